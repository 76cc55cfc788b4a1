// The bash completion (scripts/php-fpm-multi.bash-completion) against the registry: its commands,
// the options of each command, the global options, the options that take a value and the
// --format values are the registry's. Pure file
// reads; test/integration/completion.test.ts drives the completion in bash.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { OUTPUT_STYLES } from '../../src/cli/reporter.js';
import { COMMAND_OPTIONS, COMMANDS, DECLARATION_FORMS, GLOBAL_OPTIONS, HEALTH_FORMATS, PROGRAM_OPTIONS, type OptionEntry } from '../../src/cli/registry.js';

const SCRIPT = readFileSync(new URL('../../scripts/php-fpm-multi.bash-completion', import.meta.url), 'utf8');

function flags(option: { name: string; alias?: string }): string[] {
  return [`--${option.name}`, ...(option.alias === undefined ? [] : [`-${option.alias}`])];
}

/** The words of a top-level assignment NAME='…' of the script. */
function assigned(name: string): string[] {
  const match = new RegExp(`^${name}='([^']*)'$`, 'm').exec(SCRIPT);
  if (match === null) throw new Error(`scripts/php-fpm-multi.bash-completion has no ${name}='…'`);
  return (match[1] ?? '').split(' ').filter((word) => word !== '');
}

/** The case arms of one function of the script: pattern → the words of REPLY='…' (or the arm's text). */
function caseArms(functionName: string): Map<string, string[]> {
  const body = SCRIPT.slice(SCRIPT.indexOf(`${functionName}() {`));
  const cases = body.slice(0, body.indexOf('\n}\n'));
  const arms = new Map<string, string[]>();
  for (const match of cases.matchAll(/^\t([a-z]+)\) REPLY='([^']*)' ;;$/gm)) {
    arms.set(match[1] ?? '', (match[2] ?? '').split(' ').filter((word) => word !== ''));
  }
  return arms;
}

function sorted(words: readonly string[]): string[] {
  return [...words].sort();
}

describe('scripts/php-fpm-multi.bash-completion and the registry', () => {
  test('the commands are the registry\'s, in its order', () => {
    const commands = assigned('_php_fpm_multi_commands');
    expect(commands).toEqual(COMMANDS.map((entry) => entry.name));
  });

  test('the global options are the registry\'s (--conf, --style, --help, --version) and their aliases', () => {
    expect(sorted(assigned('_php_fpm_multi_global_options'))).toEqual(sorted([...GLOBAL_OPTIONS, ...PROGRAM_OPTIONS].flatMap(flags)));
  });

  test('each command completes exactly the options the registry gives it', () => {
    const arms = caseArms('_php_fpm_multi_command_options');
    expect(sorted([...arms.keys()])).toEqual(sorted(COMMANDS.map((entry) => entry.name)));
    for (const [command, options] of arms) {
      const entry = COMMANDS.find((known) => known.name === command);
      const expected = entry === undefined ? [] : entry.options.flatMap((option) => flags(COMMAND_OPTIONS[option]));
      expect(sorted(options), command).toEqual(sorted(expected));
    }
  });

  test('the options that take a value are those with an argument in the registry', () => {
    const arms = SCRIPT.slice(SCRIPT.indexOf('_php_fpm_multi_takes_value() {'));
    const pattern = /^\t(-[^)]*)\) return 0 ;;$/m.exec(arms)?.[1] ?? '';
    const withArgument: OptionEntry[] = [...GLOBAL_OPTIONS, ...PROGRAM_OPTIONS, ...Object.values(COMMAND_OPTIONS)].filter((option) => option.argument !== undefined);
    expect(sorted(pattern.split(' | '))).toEqual(sorted(withArgument.flatMap(flags)));
  });

  test('every command of the registry that takes instances completes their names', () => {
    const arm = /^\t(list \|[^)\n]*)\)$/m.exec(SCRIPT)?.[1] ?? '';
    // help's words are command names (its own arm), not instances.
    const expected = [...COMMANDS.filter((entry) => entry.takesInstances !== false && entry.name !== 'help').map((entry) => entry.name)];
    expect(sorted(arm.split(' | '))).toEqual(sorted(expected));
  });

  test('--format completes the registry\'s formats', () => {
    expect(SCRIPT).toContain(`compgen -P "$lead" -W '${HEALTH_FORMATS.join(' ')}'`);
  });

  test('--style completes the reporter\'s styles', () => {
    expect(SCRIPT).toContain(`compgen -P "$lead" -W '${OUTPUT_STYLES.join(' ')}'`);
  });

  test('--form completes the registry\'s declaration forms', () => {
    expect(SCRIPT).toContain(`compgen -P "$lead" -W '${DECLARATION_FORMS.join(' ')}'`);
  });
});
