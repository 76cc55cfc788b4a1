// The bash completion (scripts/php-fpm-multi.bash-completion) driven for real: bash sources it,
// sets COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT as readline would, calls the function
// `complete` registered, and prints COMPREPLY. The instance names come from the built controller
// (`list --names`, through a php-fpm-multi on PATH that runs dist/cli.js); a declaration file
// that would run a command if it were executed must not be executed.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { CLI, INSTALL_SCRIPT, REPO, run, show } from '../helpers/openrc.js';

const SCRIPT = join(REPO, 'scripts', 'php-fpm-multi.bash-completion');

let dir: string;
let bin: string;

/** Sources the completion and completes the last of `words` (the word under the cursor; '' for a new word). */
async function complete(words: readonly string[], path = `${bin}:/usr/bin:/bin`): Promise<{ reply: string[]; stderr: string }> {
  const driver = [
    'source "$1"; shift',
    'function=$(complete -p php-fpm-multi | sed -n "s/.*-F \\([^ ]*\\) php-fpm-multi$/\\1/p")',
    '[[ -n $function ]] || { echo "no complete -F for php-fpm-multi" >&2; exit 9; }',
    'COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))',
    'COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}',
    '"$function" php-fpm-multi "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"',
    'printf "%s\\n" "${COMPREPLY[@]}"',
  ].join('\n');
  const result = await run('bash', ['--norc', '--noprofile', '-c', driver, 'drive', SCRIPT, ...words], {
    env: { PATH: path, HOME: dir, LANG: 'C.UTF-8' },
  });
  if (result.code !== 0) throw new Error(`the completion failed: ${show(result)}`);
  return { reply: result.stdout.split('\n').filter((line) => line !== ''), stderr: result.stderr };
}

async function reply(words: readonly string[]): Promise<string[]> {
  const { reply: got, stderr } = await complete(words);
  expect(stderr).toBe('');
  return got;
}

beforeAll(() => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build it (scripts/setup)`);
  dir = mkdtempSync(join(tmpdir(), 'php-fpm-multi-completion-'));
  bin = join(dir, 'bin');
  mkdirSync(bin);
  // The installed command runs the controller with node; this one runs the checkout's build.
  execWrite(join(bin, 'php-fpm-multi'), `#!/bin/sh\nexec '${process.execPath}' '${CLI}' "$@"\n`);
  writeFileSync(join(dir, 'arrays.conf'), 'FPM_slot_web=( "slot=8.2" "config=/etc/php/web.conf" )\nFPM_slot_api_2=(\n  "slot=8.2"\n  "config=/etc/php/api.conf"\n)\n');
  writeFileSync(join(dir, 'strings.conf'), 'FPM_defaults="stop_timeout=5"\nFPM_slot_blog="slot=8.2 config=/etc/php/blog.conf"\nFPM_slot_1="slot=8.2 config=/etc/php/one.conf"\n');
  writeFileSync(join(dir, 'hostile.conf'), `FPM_slot_x=( "$(touch ${join(dir, 'pwned')})" )\nFPM_slot_y="\`touch ${join(dir, 'pwned')}\`"\n`);
});

afterAll(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

function execWrite(file: string, text: string): void {
  writeFileSync(file, text, { flag: 'wx' });
  chmodSync(file, 0o755);
}

describe('bash completion of php-fpm-multi', () => {
  test('the commands, then a prefix of them', async () => {
    expect(await reply(['php-fpm-multi', ''])).toEqual(['list', 'check', 'start', 'stop', 'restart', 'reload', 'reopen', 'status', 'supervise', 'logs', 'configtest', 'health', 'discover', 'help']);
    expect(await reply(['php-fpm-multi', 're'])).toEqual(['restart', 'reload', 'reopen']);
    expect(await reply(['php-fpm-multi', '-c', join(dir, 'arrays.conf'), 'sta'])).toEqual(['start', 'status']);
    expect(await reply(['php-fpm-multi', 'help', 'con'])).toEqual(['configtest']);
  });

  test('the global options before the command, each command\'s own after it', async () => {
    expect(await reply(['php-fpm-multi', '-'])).toEqual(['--conf', '-c', '--style', '--help', '-h', '--version', '-V']);
    expect(await reply(['php-fpm-multi', 'status', '--'])).toEqual(['--json', '--pools', '--conf', '--style', '--help']);
    expect(await reply(['php-fpm-multi', 'list', '--'])).toEqual(['--json', '--names', '--conf', '--style', '--help']);
    expect(await reply(['php-fpm-multi', 'restart', '--r'])).toEqual(['--rolling']);
    expect(await reply(['php-fpm-multi', 'start', '--p'])).toEqual(['--partial']);
    expect(await reply(['php-fpm-multi', 'check', '--'])).toEqual(['--conf', '--style', '--help']);
    expect(await reply(['php-fpm-multi', 'health', '--f'])).toEqual(['--format']);
  });

  test('--format takes text or prometheus, also after "=" as readline splits it', async () => {
    expect(await reply(['php-fpm-multi', 'health', '--format', ''])).toEqual(['text', 'prometheus']);
    expect(await reply(['php-fpm-multi', 'health', '--format', 'p'])).toEqual(['prometheus']);
    expect(await reply(['php-fpm-multi', 'health', '--format', '=', 'te'])).toEqual(['text']);
    expect(await reply(['php-fpm-multi', 'health', '--format=pr'])).toEqual(['--format=prometheus']);
  });

  test('--style takes plain or openrc; discover\'s --form takes string or array', async () => {
    expect(await reply(['php-fpm-multi', '--style', ''])).toEqual(['plain', 'openrc']);
    expect(await reply(['php-fpm-multi', 'discover', '--form', 's'])).toEqual(['string']);
    expect(await reply(['php-fpm-multi', 'discover', ''])).toEqual([]);
  });

  test('--conf and -c take a file name', async () => {
    expect(await reply(['php-fpm-multi', '--conf', join(dir, 'arr')])).toEqual([join(dir, 'arrays.conf')]);
    expect(await reply(['php-fpm-multi', 'status', '-c', join(dir, 'str')])).toEqual([join(dir, 'strings.conf')]);
  });

  test('the instance names of the file given with --conf or -c, in both forms', async () => {
    expect(await reply(['php-fpm-multi', '--conf', join(dir, 'arrays.conf'), 'stop', ''])).toEqual(['web', 'api_2']);
    expect(await reply(['php-fpm-multi', '-c', join(dir, 'strings.conf'), 'reload', ''])).toEqual(['blog', '1']);
    expect(await reply(['php-fpm-multi', 'status', '-c', join(dir, 'strings.conf'), 'b'])).toEqual(['blog']);
    expect(await reply(['php-fpm-multi', '--conf', '=', join(dir, 'arrays.conf'), 'start', 'a'])).toEqual(['api_2']);
    expect(await reply(['php-fpm-multi', `--conf='${join(dir, 'arrays.conf')}'`, 'start', 'w'])).toEqual(['web']);
  });

  test('in a comma list, the name after the last comma', async () => {
    expect(await reply(['php-fpm-multi', '-c', join(dir, 'arrays.conf'), 'restart', 'web,a'])).toEqual(['web,api_2']);
  });

  test('without --conf, the controller\'s default file ($PHP_FPM_MULTI_CONF here)', async () => {
    const script = `PHP_FPM_MULTI_CONF='${join(dir, 'strings.conf')}'; export PHP_FPM_MULTI_CONF; source '${SCRIPT}'; COMP_WORDS=(php-fpm-multi stop ''); COMP_CWORD=2; COMP_LINE='php-fpm-multi stop '; COMP_POINT=\${#COMP_LINE}; _php_fpm_multi php-fpm-multi '' stop; printf '%s\\n' "\${COMPREPLY[@]}"`;
    const result = await run('bash', ['--norc', '-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir } });
    expect(result.stdout.split('\n').filter(Boolean), show(result)).toEqual(['blog', '1']);
  });

  test('a declaration that would run a command if executed is never executed: no names, no message, no file', async () => {
    const got = await complete(['php-fpm-multi', '--conf', join(dir, 'hostile.conf'), 'stop', '']);
    expect(got).toEqual({ reply: [], stderr: '' });
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
  });

  test('quietly nothing when the file is missing or the controller is not on PATH', async () => {
    expect(await complete(['php-fpm-multi', '--conf', join(dir, 'absent.conf'), 'stop', ''])).toEqual({ reply: [], stderr: '' });
    expect(await complete(['php-fpm-multi', '--conf', join(dir, 'arrays.conf'), 'stop', ''], '/usr/bin:/bin')).toEqual({ reply: [], stderr: '' });
  });

  test('installed by install.sh where bash-completion loads it on demand, and it works loaded so', async () => {
    const loader = '/usr/share/bash-completion/bash_completion';
    if (!existsSync(loader)) throw new Error(`${loader} is missing: install the Debian package bash-completion (scripts/setup --with-test-tools does)`);
    const image = join(dir, 'image');
    const installed = await run('sh', [INSTALL_SCRIPT], { env: { PATH: `${join(process.execPath, '..')}:/usr/bin:/bin`, HOME: dir, DESTDIR: image }, timeoutMs: 60_000 });
    expect(installed.code, show(installed)).toBe(0);
    // bash-completion looks for a command's completion in $XDG_DATA_DIRS/bash-completion/completions.
    const script = [
      `source ${loader}`,
      `XDG_DATA_DIRS='${join(image, 'usr', 'share')}'`,
      'complete -p php-fpm-multi >/dev/null 2>&1 && { echo "loaded too early" >&2; exit 9; }',
      '__load_completion php-fpm-multi || exit 8',
      `COMP_WORDS=(php-fpm-multi -c '${join(dir, 'arrays.conf')}' stop ''); COMP_CWORD=4; COMP_LINE="\${COMP_WORDS[*]}"; COMP_POINT=\${#COMP_LINE}`,
      "$(complete -p php-fpm-multi | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p') php-fpm-multi '' stop",
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const result = await run('bash', ['--norc', '--noprofile', '-c', script], { env: { PATH: `${bin}:/usr/bin:/bin`, HOME: dir, LANG: 'C.UTF-8' } });
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout.split('\n').filter(Boolean), show(result)).toEqual(['web', 'api_2']);
  });
});
