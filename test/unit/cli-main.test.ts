// Unit tests of the command line (src/cli/main.ts over src/cli/registry.ts) with the fake System:
// options are validated against the command that receives them, and --help is printed from the
// same table, so the two cannot disagree.
import { describe, expect, test } from 'vitest';
import { HELP, main } from '../../src/cli/main.js';
import { COMMAND_OPTIONS, COMMANDS, commandsTaking, type CommandOption } from '../../src/cli/registry.js';
import { FakeSystem } from '../fixtures/fake-system.js';

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (text) => void (stdout += text), stderr: (text) => void (stderr += text), env: {}, system: new FakeSystem() });
  return { code, stdout, stderr };
}

describe('the registry and --help', () => {
  test('every command is listed with its summary', () => {
    for (const { name, summary } of COMMANDS) expect(HELP).toContain(`  ${name.padEnd(11)}${summary}`);
  });

  test.each(Object.keys(COMMAND_OPTIONS) as CommandOption[])('--%s is listed with the commands that take it', (option) => {
    expect(HELP).toMatch(new RegExp(`^ +(?:-[A-Za-z], )?--${option}(?: [A-Z]+)? +${commandsTaking(option).join(', ')}: `, 'm'));
  });
});

describe('options are checked against the command', () => {
  test.each(COMMANDS.flatMap((entry) => (Object.keys(COMMAND_OPTIONS) as CommandOption[]).filter((option) => !entry.options.includes(option)).map((option) => [entry.name, option] as const)))(
    '%s refuses --%s (exit 2) before reading anything',
    async (command, option) => {
      const result = await run([command, `--${option}${option === 'format' ? '=text' : ''}`]);
      expect(result.code).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(/^php-fpm-multi: (--|health has no --json)/);
    },
  );

  test('an unknown command names the known ones', async () => {
    expect(await run(['frobnicate'])).toEqual({ code: 2, stdout: '', stderr: `php-fpm-multi: unknown command "frobnicate"; one of: ${COMMANDS.map((entry) => entry.name).join(', ')}\n` });
  });

  test('a missing declaration file in the fake System: exit 6, nothing else read', async () => {
    const result = await run(['--conf', '/etc/conf.d/absent', 'list']);
    expect(result.code).toBe(6);
    expect(result.stderr).toContain('/etc/conf.d/absent: no such file');
  });
});
