// The man page (docs/php-fpm-multi.8) against what the controller accepts: every command of the
// registry, every option (global, program, command options and their aliases), every key of
// src/model/keys.ts and every exit code of the README's table is documented in its section of the
// page, and everything the page documents there exists. Pure file reads of the repository.
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { COMMAND_OPTIONS, COMMANDS, GLOBAL_OPTIONS, PROGRAM_OPTIONS } from '../../src/cli/registry.js';
import { KNOWN_KEYS } from '../../src/model/keys.js';

const MAN_PAGE = readFileSync(new URL('../../docs/php-fpm-multi.8', import.meta.url), 'utf8');
const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

/** roff text with the escapes this page uses turned into the characters they print. */
function unescape(text: string): string {
  return text.replace(/\\f[BIRP]/g, '').replace(/\\-/g, '-').replace(/\\&/g, '').replace(/"/g, '').replace(/\s+/g, ' ');
}

/** The lines of one `.SH` section (or `.SS` subsection), up to the next heading of that level or above. */
function section(heading: string, level: 'SH' | 'SS' = 'SH'): string[] {
  const lines = MAN_PAGE.split('\n');
  const start = lines.findIndex((line) => line === `.${level} ${heading}` || line === `.${level} "${heading}"`);
  if (start < 0) throw new Error(`docs/php-fpm-multi.8 has no .${level} ${heading}`);
  const stop = level === 'SH' ? /^\.SH / : /^\.S[HS] /;
  const end = lines.findIndex((line, index) => index > start && stop.test(line));
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

/** The tag lines of a section's `.TP` items (the line after each `.TP`), unescaped. */
function tags(lines: readonly string[]): string[] {
  return lines.flatMap((line, index) => (line === '.TP' && lines[index + 1] !== undefined ? [unescape(lines[index + 1] ?? '')] : []));
}

/** The first word of a tag after its macro (`.B list` → list). */
function firstWord(tag: string): string {
  return tag.replace(/^\.[A-Z]+\s+/, '').split(/[\s=]/)[0] ?? '';
}

const registryOptions = [...GLOBAL_OPTIONS, ...PROGRAM_OPTIONS, ...Object.values(COMMAND_OPTIONS)];

describe('docs/php-fpm-multi.8 and the registry, keys and exit codes', () => {
  test('COMMANDS lists every command of the registry, and only those', () => {
    const documented = tags(section('COMMANDS')).map(firstWord);
    const known = COMMANDS.map((entry) => entry.name);
    expect(known.filter((name) => !documented.includes(name)), 'commands missing from COMMANDS of the man page').toEqual([]);
    expect(documented.filter((name) => !known.includes(name)), 'documented commands the registry lacks').toEqual([]);
    expect(new Set(documented).size, 'a command documented twice').toBe(documented.length);
  });

  test('OPTIONS lists every option and alias, and only those', () => {
    const documented = tags(section('OPTIONS')).flatMap((tag) => [...tag.matchAll(/(?:^|[\s,])(--?[A-Za-z][A-Za-z-]*)/g)].map((match) => match[1] ?? ''));
    const known = registryOptions.flatMap((option) => [`--${option.name}`, ...(option.alias === undefined ? [] : [`-${option.alias}`])]);
    expect(known.filter((flag) => !documented.includes(flag)), 'options missing from OPTIONS of the man page').toEqual([]);
    expect(documented.filter((flag) => !known.includes(flag)), 'documented options the registry lacks').toEqual([]);
  });

  test('an option with an argument shows it as the registry names it', () => {
    for (const option of registryOptions.filter((entry) => entry.argument !== undefined)) {
      const tag = tags(section('OPTIONS')).find((line) => line.includes(`--${option.name} `));
      expect(tag, `--${option.name}`).toContain(`--${option.name} ${option.argument ?? ''}`);
    }
  });

  test('the Keys subsection lists every key of src/model/keys.ts, and only those', () => {
    const documented = tags(section('Keys', 'SS')).map(firstWord);
    const known: readonly string[] = KNOWN_KEYS;
    expect(known.filter((key) => !documented.includes(key)), 'keys missing from the Keys subsection of the man page').toEqual([]);
    expect(documented.filter((key) => !known.includes(key)), 'documented keys src/model/keys.ts lacks').toEqual([]);
  });

  test("EXIT STATUS lists exactly the README's exit codes", () => {
    const table = README.slice(README.indexOf('## Exit codes'));
    const readmeCodes = [...table.slice(0, table.indexOf('\n## ', 3)).matchAll(/^\| (\d+) \|/gm)].map((match) => match[1]);
    expect(readmeCodes.length).toBeGreaterThan(5);
    expect(tags(section('EXIT STATUS')).map(firstWord)).toEqual(readmeCodes);
  });

  test('the title names the version of package.json', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(MAN_PAGE).toMatch(new RegExp(`^\\.TH PHP-FPM-MULTI 8 \\S+ "php-fpm-multi ${version.replace(/\./g, '\\.')}"`, 'm'));
  });

  test('FILES names the files the controller and install.sh use', () => {
    const files = section('FILES').map(unescape).join('\n');
    for (const name of ['/etc/conf.d/php-fpm', '/etc/init.d/php-fpm', '/run/php-fpm-multi/', 'lock', '.record.json', '.pid', '.launch.json', '.failure.json',
      '.held.json', 'supervisor.json', 'last-run-dir.', '/usr/share/bash-completion/completions/php-fpm-multi']) {
      expect(files, name).toContain(name);
    }
  });
});
