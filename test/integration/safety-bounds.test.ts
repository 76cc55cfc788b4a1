// Bounded, checked reading (issue 10, "Reading what others can write"): the one primitive every
// file goes through, the limits of the declaration reader, and the php-fpm config reader's use of
// both. The end-to-end cases (the built CLI against FIFOs, /dev/zero and bombs) are in
// test/hostile-reads.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { DeclarationError } from '../../src/errors.js';
import { loadFpmConfig } from '../helpers/fpm-config-fs.js';
import { buildModules } from '../helpers/modules.js';
import { FPM_CONFIG_TOTAL_MAX_BYTES } from '../../src/php-fpm/config/types.js';
import { MAX_EXPANDED_TOTAL_CHARS, MAX_VALUE_CHARS } from '../../src/declaration/expansion.js';
import { readDeclaration } from '../../src/declaration/reader.js';
import {
  FPM_CONFIG_MAX_BYTES, readRegularFile, readRegularFileBytes, UnsafeFileError,
} from '../../src/process/system.js';

let dir = '';
let socketServer: Server;
const fifo = (): string => join(dir, 'fifo');
const zero = (): string => join(dir, 'zero');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'safety-bounds-'));
  execFileSync('mkfifo', [fifo()]);
  symlinkSync('/dev/zero', zero());
  socketServer = createServer();
  await new Promise<void>((resolve) => socketServer.listen(join(dir, 'socket'), resolve));
});
afterAll(async () => {
  await new Promise<void>((resolve) => socketServer.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

// The modules the children import, compiled one by one (dist/ is one bundle).
let DIST = '';
beforeAll(() => {
  DIST = buildModules(['process/system.ts', 'php-fpm/config/load.ts']);
});
afterAll(() => {
  rmSync(DIST, { recursive: true, force: true });
});

/**
 * Runs `body` (an async ES module body with `dist` bound to the directory of the compiled modules) in
 * a child killed after 15 s, and returns what it printed. Reads that blocked for ever before the
 * fix are tried there, so that the test fails instead of hanging the test runner.
 */
function inChild(body: string, args: readonly string[]): string[] {
  const script = `const dist = ${JSON.stringify(DIST)};\n${body}`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script, ...args], {
    encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL',
  });
  expect(child.signal, `the child was killed after 15 s (blocked?): ${child.stderr}`).toBeNull();
  expect(child.stderr).toBe('');
  return child.stdout.trim().split('\n');
}

/** The error a synchronous call throws (the call must throw). */
function thrown(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

function refusal(path: string, limits: Parameters<typeof readRegularFile>[1]): UnsafeFileError {
  const error = thrown(() => readRegularFile(path, limits));
  expect(error).toBeInstanceOf(UnsafeFileError);
  return error as UnsafeFileError;
}

describe('readRegularFile: regular files only, never blocking', () => {
  // Before: readFileSync on a FIFO without a writer blocked the whole process for ever.
  test('a FIFO is refused at once, naming it', () => {
    const error = refusal(fifo(), { maxBytes: 1024 });
    expect(error.message).toBe(`${fifo()} is a FIFO, not a regular file`);
    expect(error.reason).toBe('not-regular');
  });

  test('a symlink to /dev/zero is refused as a character device (followed, not read)', () => {
    expect(refusal(zero(), { maxBytes: 1024 }).message).toBe(`${zero()} is a character device, not a regular file (it leads to /dev/zero)`);
  });

  test('a directory and a socket are refused', () => {
    expect(refusal(dir, { maxBytes: 1024 }).message).toBe(`${dir} is a directory, not a regular file`);
    expect(refusal(join(dir, 'socket'), { maxBytes: 1024 }).message).toBe(`${join(dir, 'socket')} is a socket, not a regular file`);
  });

  test('noFollow refuses any symlink, also to a regular file; without it a symlink to one is read', () => {
    const target = join(dir, 'target');
    writeFileSync(target, '1234\n');
    const link = join(dir, 'link');
    symlinkSync(target, link);
    expect(readRegularFile(link, { maxBytes: 1024 })).toBe('1234\n');
    expect(refusal(link, { maxBytes: 1024, noFollow: true }).message).toBe(`${link} is a symlink, not a regular file`);
    expect(refusal(zero(), { maxBytes: 1024, noFollow: true }).message).toBe(`${zero()} is a symlink, not a regular file`);
  });

  test('the descriptor is checked too, where the path is not looked at first (procfs)', () => {
    expect(refusal(fifo(), { maxBytes: 1024, procfs: true }).message).toBe(`${fifo()} is a FIFO, not a regular file`);
    expect(refusal(zero(), { maxBytes: 1024, procfs: true }).message).toBe(`${zero()} is a character device, not a regular file (it leads to /dev/zero)`);
  });

  // In a child, killed after 15 s: before the fix the read blocked for ever.
  test('the System interface uses it: readFile rejects a FIFO and /dev/zero', () => {
    const lines = inChild(`
      const { createRealSystem } = await import(dist + '/process/system.mjs');
      const system = createRealSystem();
      for (const path of process.argv.slice(1)) {
        console.log(await system.readFile(path, { maxBytes: 1024 }).then((text) => 'read ' + text.length, (error) => error.message));
      }`, [fifo(), zero(), '/proc/self/stat']);
    expect(lines.slice(0, 2)).toEqual([`${fifo()} is a FIFO, not a regular file`, `${zero()} is a character device, not a regular file (it leads to /dev/zero)`]);
    expect(lines[2]).toMatch(/^read \d+$/);
  });
});

describe('readRegularFile: size caps', () => {
  test('a file at the limit is read whole; one byte more is refused with the limit and the size found', () => {
    const file = join(dir, 'sized');
    writeFileSync(file, 'x'.repeat(4096));
    expect(readRegularFile(file, { maxBytes: 4096 })).toHaveLength(4096);
    writeFileSync(file, 'x'.repeat(4097));
    const error = refusal(file, { maxBytes: 4096 });
    expect(error.message).toBe(`${file} is larger than the limit of 4 KiB (found 4 KiB)`);
    expect(error.reason).toBe('too-large');
  });

  test('a huge sparse file is refused from its size, without reading it', () => {
    const file = join(dir, 'huge');
    writeFileSync(file, '');
    truncateSync(file, 8 * 1024 * 1024 * 1024);
    expect(refusal(file, { maxBytes: 1024 * 1024 }).message).toBe(`${file} is larger than the limit of 1 MiB (found 8192 MiB)`);
  });

  test('/proc files (st_size 0) are read to their end in a loop, and refused past the limit', () => {
    const status = readRegularFile('/proc/self/status', { maxBytes: 1024 * 1024, procfs: true });
    expect(status).toMatch(/^Name:/);
    expect(status).toMatch(/\nVmHWM:.*\n[\s\S]*voluntary_ctxt_switches/);
    expect(status.length).toBeGreaterThan(1000);
    expect(refusal('/proc/self/status', { maxBytes: 64, procfs: true }).message).toBe('/proc/self/status is larger than the limit of 64 bytes (found more than 64 bytes)');
  });

  test('a file larger than the scratch buffer is read whole, and bytes are a copy the caller may keep', () => {
    const file = join(dir, 'large');
    const text = 'abcdefghij'.repeat(50_000);
    writeFileSync(file, text);
    expect(readRegularFile(file, { maxBytes: 1024 * 1024 })).toBe(text);
    writeFileSync(file, 'first');
    const first = readRegularFileBytes(file, { maxBytes: 100 });
    writeFileSync(file, 'second');
    readRegularFileBytes(file, { maxBytes: 100 });
    expect(first.toString()).toBe('first');
  });

  test('offset: only what follows is read and counted against the limit', () => {
    const file = join(dir, 'log');
    writeFileSync(file, `${'old line\n'.repeat(1000)}new line\n`);
    expect(readRegularFile(file, { maxBytes: 9, offset: 9000 })).toBe('new line\n');
    expect(readRegularFile(file, { maxBytes: 9, offset: 20_000 })).toBe('');
  });
});

describe('the declaration reader bounds expanded values', () => {
  const read = (text: string) => readDeclaration(text, { file: 'decl', env: {} });
  const refusalOf = (text: string): DeclarationError => {
    const error = thrown(() => read(text));
    expect(error).toBeInstanceOf(DeclarationError);
    return error as DeclarationError;
  };
  const names = Array.from({ length: 27 }, (_, i) => `v${i}`);
  const bomb = ['v0=xx', ...names.slice(1).map((name, i) => `${name}=$${names[i]}$${names[i]}`)].join('; ');

  // Before: 27 doubling variables (a 1.2 KB file) grew to 570 MB and ended in RangeError.
  test('27 doubling variables are refused at the expansion that crosses the limit', () => {
    const error = refusalOf(`${bomb}\n`);
    const crossing = bomb.indexOf('v16=') + 'v16=$v15'.length + 1; // the second $v15
    expect(error.location).toEqual({ file: 'decl', line: 1, column: crossing });
    expect(error.message).toBe(
      `decl:1:${crossing}: value expanded by "$v15" longer than ${MAX_VALUE_CHARS} characters found. No declaration needs values this long (${MAX_VALUE_CHARS} characters; variables that expand each other double at every step): write the value without repeated expansions`,
    );
    expect(error.exitCode).toBe(6);
  });

  test('the same bomb in an array, and through +=, is refused too', () => {
    const arrays = 'a=x; ' + names.slice(1, 18).map((name, i) => `${name}=("$${i === 0 ? 'a' : names[i]}$${i === 0 ? 'a' : names[i]}")`).join('; ');
    expect(() => read(arrays)).toThrow(/naming an array found/); // $A of an array is refused anyway
    const fields = `a=${'x'.repeat(40_000)}\nb=(pre$a$a)\n`;
    expect(refusalOf(fields).message).toMatch(/^decl:2:9: array element expanded by "\$a" longer than 65536 characters found/);
    const appended = `a=${'x'.repeat(40_000)}\nb=$a\nb+=$a\n`;
    expect(refusalOf(appended).message).toMatch(/^decl:3:1: value of "b" longer than 65536 characters found/);
  });

  test('values up to the limit are read exactly', () => {
    const half = 'y'.repeat(MAX_VALUE_CHARS / 2);
    const declaration = read(`a=${half}\nb=$a$a\nc=("$b")\n`);
    expect(declaration.variables.find((v) => v.name === 'b')?.value).toEqual({ kind: 'string', value: half + half });
    expect(declaration.variables.find((v) => v.name === 'c')?.value).toEqual({ kind: 'array', elements: [half + half] });
  });

  test('expansions adding up to more than the total limit are refused', () => {
    const value = 'z'.repeat(MAX_VALUE_CHARS);
    const count = Math.ceil(MAX_EXPANDED_TOTAL_CHARS / MAX_VALUE_CHARS) + 1;
    const text = `a=${value}\n${Array.from({ length: count }, (_, i) => `b${i}=$a`).join('\n')}\n`;
    const error = refusalOf(text);
    expect(error.message).toMatch(new RegExp(`^decl:${count + 1}:${`b${count - 1}=`.length + 1}: expansions producing more than ${MAX_EXPANDED_TOTAL_CHARS} characters in all found`));
  });

  test('appending to an array is linear: 100,000 A+=(x) lines read in one go', () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `A+=(x${i})`);
    const declaration = read(`A=()\n${lines.join('\n')}\n`);
    const value = declaration.variables[0]!.value;
    expect(value.kind === 'array' ? value.elements.length : 0).toBe(100_000);
    expect(value.kind === 'array' ? value.elements.at(-1) : null).toBe('x99999');
  });
});

describe('php-fpm configs and their includes', () => {
  function configWithInclude(name: string, pattern: string): string {
    const base = join(dir, name);
    mkdirSync(join(base, 'inc'), { recursive: true });
    const config = join(base, 'php-fpm.conf');
    writeFileSync(config, `[global]\nerror_log = ${base}/error.log\n\ninclude = ${pattern}\n`);
    return config;
  }

  /** The controller's own reading of each config (through the real System), in a child (see inChild): its error message, or its pools. */
  function loadInChild(...configs: string[]): string[] {
    return inChild(`
      const { readFpmConfig } = await import(dist + '/php-fpm/config/load.mjs');
      const { createRealSystem } = await import(dist + '/process/system.mjs');
      const system = createRealSystem();
      for (const config of process.argv.slice(1)) {
        try {
          console.log('pools ' + (await readFpmConfig(system, config, { env: {} })).pools.map((pool) => pool.name).join(','));
        } catch (error) {
          console.log(error.constructor.name + ': ' + error.message);
        }
      }`, configs);
  }

  // Before: php-fpm-multi start read the FIFO for ever, or /dev/zero until memory ran out.
  test('an include matching a FIFO or a symlink to /dev/zero is refused at the include line, naming the file', () => {
    const configs = (['fifo', 'zero'] as const).map((name) => {
      const config = configWithInclude(`include-${name}`, `${dir}/include-${name}/inc/*.conf`);
      const planted = join(dir, `include-${name}`, 'inc', 'www.conf');
      if (name === 'fifo') execFileSync('mkfifo', [planted]);
      else symlinkSync('/dev/zero', planted);
      return { config, planted };
    });
    const fix = 'php-fpm-multi reads only regular files (a symlink to one is fine): remove it from the include pattern or replace it with a regular file.';
    expect(loadInChild(...configs.map(({ config }) => config))).toEqual([
      `FpmConfigError: ${configs[0]!.config}:4: cannot read '${configs[0]!.planted}': is a FIFO, not a regular file. ${fix}`,
      `FpmConfigError: ${configs[1]!.config}:4: cannot read '${configs[1]!.planted}': is a character device, not a regular file (it leads to /dev/zero). ${fix}`,
    ]);
  });

  test('an included file over the per-file limit is refused with the limit and the size', () => {
    const config = configWithInclude('include-huge', `${dir}/include-huge/inc/*.conf`);
    const planted = join(dir, 'include-huge', 'inc', 'www.conf');
    writeFileSync(planted, '');
    truncateSync(planted, 2 * FPM_CONFIG_MAX_BYTES);
    expect(() => loadFpmConfig(config)).toThrow(
      `${config}:4: cannot read '${planted}': is larger than the limit of 1 MiB (found 2 MiB). Each php-fpm configuration file is limited to 1 MiB: check what the include pattern matches.`,
    );
  });

  test('the includes together are limited, each file being under its own limit', () => {
    const config = configWithInclude('include-many', `${dir}/include-many/inc/*.conf`);
    const files = Math.floor(FPM_CONFIG_TOTAL_MAX_BYTES / FPM_CONFIG_MAX_BYTES) + 1;
    const chunk = `; ${'c'.repeat(FPM_CONFIG_MAX_BYTES - 1024)}\n`; // one comment line of nearly 1 MiB
    for (let i = 0; i < files; i++) writeFileSync(join(dir, 'include-many', 'inc', `${String(i).padStart(2, '0')}.conf`), chunk);
    expect(() => loadFpmConfig(config)).toThrow(
      new RegExp(`^${config}:4: reading '.*/${String(files - 1).padStart(2, '0')}\\.conf' makes the configuration and its includes larger than the limit of 16 MiB in all`),
    );
  });

  test('the main config may be a symlink to a regular file, but not a FIFO', () => {
    const config = configWithInclude('main-link', `${dir}/main-link/inc/*.conf`);
    writeFileSync(join(dir, 'main-link', 'inc', 'www.conf'), '[www]\nlisten = /run/x.sock\npm = static\npm.max_children = 1\n');
    symlinkSync(config, join(dir, 'main-link', 'linked.conf'));
    expect(loadInChild(join(dir, 'main-link', 'linked.conf'), fifo())).toEqual([
      'pools www',
      `FpmConfigError: ${fifo()}: cannot read '${fifo()}': is a FIFO, not a regular file. php-fpm-multi reads only regular files (a symlink to one is fine): point config= at the php-fpm configuration file.`,
    ]);
  });
});
