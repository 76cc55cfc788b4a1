// Tests of src/php-fpm/config/ and src/php-fpm/listen.ts. Expectations come from php-fpm 8.2 itself: the oracle tests at the
// end run `/usr/sbin/php-fpm8.2 -tt` on scratch copies of the same fixtures and value snippets
// and compare its configuration dump with the parser's result. They fail, never skip, when the
// binary is missing.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { FpmMultiError } from '../../src/errors.js';
import { EXIT_FAILURE } from '../../src/exit-codes.js';
import { GlobAbortedError, globSegmentToRegExp } from '../../src/php-fpm/config/glob.js';
import { globFs, loadFpmConfig } from '../helpers/fpm-config-fs.js';
import { parseFpmConfig } from '../../src/php-fpm/config/parse.js';
import { FpmConfigError, type FpmConfig, type FpmConfigReader, type FpmPool } from '../../src/php-fpm/config/types.js';
import { findListenConflicts, listensOverlap, normalizeListen, type ListenEndpoint } from '../../src/php-fpm/listen.js';

const PHP_FPM = '/usr/sbin/php-fpm8.2';
/** php-fpm -tt answers in well under a second; this only stops a hung binary. */
const PHP_FPM_TIMEOUT_MS = 20_000;
const FIXTURES = fileURLToPath(new URL('../fixtures/fpm-config/', import.meta.url));
const DIR = '<dir>';

const scratchDirs: string[] = [];
afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
});

function makeScratchDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fpm-config-test-'));
  scratchDirs.push(dir);
  return dir;
}

function fixtureDir(name: string): string {
  return join(FIXTURES, name);
}

/** php-fpm -tt opens error_log, so the oracle runs on copies, never inside the repository. */
function copyFixture(name: string): string {
  const dir = join(makeScratchDir(), name);
  cpSync(fixtureDir(name), dir, { recursive: true, verbatimSymlinks: true });
  return dir;
}

function withDir(text: string, dir: string): string {
  return text.split(DIR).join(dir);
}

function withoutDir(text: string, dir: string): string {
  return text.split(dir).join(DIR);
}

function resolveEnv(env: Record<string, string> | undefined, dir: string): Record<string, string> {
  return Object.fromEntries(Object.entries(env ?? {}).map(([key, value]) => [key, withDir(value, dir)]));
}

// ---------------------------------------------------------------------------------------------
// Summaries: what the controller uses, with fixture paths replaced by <dir>.

interface PoolSummary {
  name: string;
  at: string;
  listen: string | null;
  pingPath: string | null;
  pingResponse: string | null;
  statusPath: string | null;
  pm: string | null;
  user: string | null;
  prefix: string | null;
  statusListen: string | null;
}

interface ConfigSummary {
  pid: string | null;
  errorLog: string;
  daemonize: boolean;
  includes: string[];
  pools: PoolSummary[];
  files: string[];
  warnings: string[];
}

function summarizePool(pool: FpmPool, dir: string): PoolSummary {
  const rel = (value: string | null): string | null => (value === null ? null : withoutDir(value, dir));
  return {
    name: pool.name,
    at: `${withoutDir(pool.file, dir)}:${pool.line}`,
    listen: rel(pool.listen),
    pingPath: pool.pingPath,
    pingResponse: pool.pingResponse,
    statusPath: pool.statusPath,
    pm: pool.pm,
    user: pool.user,
    prefix: rel(pool.prefix),
    statusListen: rel(pool.statusListen),
  };
}

function summarize(config: FpmConfig, dir: string): ConfigSummary {
  const rel = (value: string): string => withoutDir(value, dir);
  const { errorLog } = config.global;
  return {
    pid: config.global.pid === null ? null : rel(config.global.pid),
    errorLog: errorLog.kind === 'syslog' ? `syslog:${errorLog.ident}` : `file:${rel(errorLog.path)}`,
    daemonize: config.global.daemonize,
    includes: config.global.includes.map((inc) => `${rel(inc.file)}:${inc.line} ${rel(inc.pattern)} -> [${inc.files.map(rel).join(', ')}]`),
    pools: config.pools.map((pool) => summarizePool(pool, dir)),
    files: config.files.map(rel),
    warnings: config.warnings.map((w) => `${rel(w.file)}:${w.line} ${w.refusedByPhpFpm ? 'refused' : 'warning'}: ${rel(w.message)}`),
  };
}

function pool(name: string, at: string, listen: string | null, rest: Partial<PoolSummary> = {}): PoolSummary {
  return { name, at, listen, pingPath: null, pingResponse: null, statusPath: null, pm: 'static', user: 'www-data', prefix: null, statusListen: null, ...rest };
}

// ---------------------------------------------------------------------------------------------
// Fixtures that php-fpm accepts.

interface FixtureCase {
  fixture: string;
  /** Pass the fixture directory as php-fpm's -p. */
  usePrefix: boolean;
  env?: Record<string, string>;
  expected: ConfigSummary;
}

const FIXTURE_CASES: FixtureCase[] = [
  {
    fixture: 'debian-layout',
    usePrefix: true,
    expected: {
      pid: '<dir>/run/php-fpm.pid',
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: false,
      includes: ['<dir>/php-fpm.conf:12 <dir>/pool.d/*.conf -> [<dir>/pool.d/api.conf, <dir>/pool.d/www.conf]'],
      pools: [
        pool('api', '<dir>/pool.d/api.conf:1', '127.0.0.1:9071', { pm: 'ondemand', pingPath: '/health', pingResponse: 'ok' }),
        pool('www', '<dir>/pool.d/www.conf:1', '/run/php/debian-layout-www.sock', { pm: 'dynamic', pingPath: '/ping', pingResponse: 'pong', statusPath: '/status' }),
      ],
      files: ['<dir>/php-fpm.conf', '<dir>/pool.d/api.conf', '<dir>/pool.d/www.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'pool-substitution',
    usePrefix: true,
    expected: {
      pid: null,
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: false,
      includes: ['<dir>/php-fpm.conf:17 <dir>/pools/*.conf -> [<dir>/pools/blog.conf, <dir>/pools/shop-extra.conf]'],
      pools: [
        pool('Shop', '<dir>/php-fpm.conf:4', '<dir>/run/Shop-2.sock', { pingPath: '/Shop-ping', pingResponse: 'Shop is alive' }),
        pool('blog', '<dir>/pools/blog.conf:1', '<dir>/run/blog-blog.sock', { statusPath: '/blog/status' }),
      ],
      files: ['<dir>/php-fpm.conf', '<dir>/pools/blog.conf', '<dir>/pools/shop-extra.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'env-substitution',
    usePrefix: true,
    env: { FPM_RUN: '/run/env-test', POOL_PORT: '9072', FPM_NAME: 'envpool' },
    expected: {
      pid: '/run/env-test/master.pid',
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: [],
      pools: [
        pool('envpool', '<dir>/php-fpm.conf:5', '127.0.0.1:9072', { pingPath: '/ping-envpool', pingResponse: '${FPM_NAME} stays literal in single quotes', statusPath: '/status' }),
        pool('second', '<dir>/php-fpm.conf:14', '/run/env-test/second.sock', { pingPath: '/p', pingResponse: 'pong' }),
      ],
      files: ['<dir>/php-fpm.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'quoting-comments',
    usePrefix: true,
    env: { FPM_WORD: 'word' },
    expected: {
      pid: null,
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: false,
      includes: [],
      pools: [
        pool('quoted', '<dir>/php-fpm.conf:7', '<dir>/run/with space;semicolon.sock', { pingPath: '/ping', pingResponse: 'say "pong" \\ $HOME word', statusPath: '/status' }),
        pool('concat', '<dir>/php-fpm.conf:16', '<dir>/run/concat .sock', { pingPath: '/concat', pingResponse: 'pong # not a comment', statusPath: '/a/b/c' }),
        pool('words', '<dir>/php-fpm.conf:25', '<dir>/run/words.sock', { pingPath: '/words', pingResponse: '1' }),
      ],
      files: ['<dir>/php-fpm.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'crlf',
    usePrefix: true,
    expected: {
      pid: null,
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: [],
      pools: [pool('dos', '<dir>/php-fpm.conf:4', '<dir>/run/dos.sock', { pingPath: '/ping', pingResponse: 'pong' })],
      files: ['<dir>/php-fpm.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'relative-paths',
    usePrefix: true,
    expected: {
      pid: '<dir>/run/fpm.pid',
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: [],
      pools: [
        pool('prefixed', '<dir>/php-fpm.conf:5', '<dir>/pools/prefixed/run/fpm.sock', { prefix: '<dir>/pools/prefixed' }),
        pool('plain', '<dir>/php-fpm.conf:13', '<dir>/plain.sock', { statusListen: '<dir>/status.sock', statusPath: '/' }),
        pool('tcp', '<dir>/php-fpm.conf:21', '9073'),
      ],
      files: ['<dir>/php-fpm.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'include-nothing',
    usePrefix: true,
    expected: {
      pid: null,
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: ['<dir>/php-fpm.conf:4 <dir>/missing.d/absent.conf -> []', '<dir>/php-fpm.conf:5 <dir>/pool.d/*.none -> []'],
      pools: [pool('only', '<dir>/php-fpm.conf:7', '<dir>/run/only.sock')],
      files: ['<dir>/php-fpm.conf'],
      warnings: [
        "<dir>/php-fpm.conf:4 warning: nothing matches the include pattern '<dir>/missing.d/absent.conf'",
        "<dir>/php-fpm.conf:5 warning: nothing matches the include pattern '<dir>/pool.d/*.none'",
      ],
    },
  },
  {
    fixture: 'include-nested',
    usePrefix: true,
    expected: {
      pid: '<dir>/run/nested.pid',
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: [
        '<dir>/php-fpm.conf:9 <dir>/level1/*.conf -> [<dir>/level1/B.conf, <dir>/level1/a.conf]',
        '<dir>/level1/B.conf:7 <dir>/level1/level2/*.conf -> [<dir>/level1/level2/deep.conf]',
      ],
      pools: [
        pool('main', '<dir>/php-fpm.conf:4', '<dir>/run/main.sock'),
        pool('upper', '<dir>/level1/B.conf:2', '<dir>/run/upper.sock'),
        pool('deep', '<dir>/level1/level2/deep.conf:1', '<dir>/run/deep.sock'),
        pool('lower', '<dir>/level1/a.conf:1', '<dir>/run/lower.sock', { pingPath: '/after-include', pingResponse: 'pong' }),
      ],
      files: ['<dir>/php-fpm.conf', '<dir>/level1/B.conf', '<dir>/level1/level2/deep.conf', '<dir>/level1/a.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'include-patterns',
    usePrefix: true,
    expected: {
      pid: null,
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: [
        '<dir>/php-fpm.conf:3 <dir>/conf.d/[a-c]?.conf -> [<dir>/conf.d/a1.conf, <dir>/conf.d/b2.conf]',
        '<dir>/php-fpm.conf:4 <dir>/conf.d/.*.conf -> [<dir>/conf.d/.hidden.conf]',
        '<dir>/php-fpm.conf:5 <dir>/*/nested.conf -> [<dir>/sub/nested.conf]',
        '<dir>/php-fpm.conf:7 <dir>/conf.d/[!ab]*.conf -> [<dir>/conf.d/d3.conf]',
      ],
      pools: [
        pool('a1', '<dir>/conf.d/a1.conf:1', '<dir>/run/a1.sock'),
        pool('b2', '<dir>/conf.d/b2.conf:1', '<dir>/run/b2.sock'),
        pool('hidden', '<dir>/conf.d/.hidden.conf:1', '<dir>/run/hidden.sock'),
        pool('nested', '<dir>/sub/nested.conf:1', '<dir>/run/nested.sock'),
        pool('d3', '<dir>/conf.d/d3.conf:1', '<dir>/run/d3.sock'),
      ],
      files: ['<dir>/php-fpm.conf', '<dir>/conf.d/a1.conf', '<dir>/conf.d/b2.conf', '<dir>/conf.d/.hidden.conf', '<dir>/sub/nested.conf', '<dir>/conf.d/d3.conf'],
      warnings: [],
    },
  },
  {
    // Without -p: pid from /var, listen from /usr (Debian's compiled-in paths).
    fixture: 'default-prefix',
    usePrefix: false,
    env: { FPM_TEST_DIR: DIR },
    expected: {
      pid: '/var/run/default-prefix-test.pid',
      errorLog: 'file:<dir>/log/php-fpm.log',
      daemonize: true,
      includes: ['<dir>/php-fpm.conf:5 <dir>/pool.d/*.conf -> [<dir>/pool.d/noprefix.conf]'],
      pools: [pool('noprefix', '<dir>/pool.d/noprefix.conf:1', '/usr/run/default-prefix-test.sock')],
      files: ['<dir>/php-fpm.conf', '<dir>/pool.d/noprefix.conf'],
      warnings: [],
    },
  },
  {
    fixture: 'syslog',
    usePrefix: true,
    expected: {
      pid: null,
      errorLog: 'syslog:shop-fpm',
      daemonize: true,
      includes: [],
      pools: [pool('shop', '<dir>/php-fpm.conf:5', '/run/php/syslog-shop.sock')],
      files: ['<dir>/php-fpm.conf'],
      warnings: [],
    },
  },
];

function loadFixture(dir: string, row: { usePrefix: boolean; env?: Record<string, string> }): FpmConfig {
  return loadFpmConfig(join(dir, 'php-fpm.conf'), {
    ...(row.usePrefix ? { prefix: dir } : {}),
    env: resolveEnv(row.env, dir),
  });
}

describe('loadFpmConfig on fixtures php-fpm accepts', () => {
  test.each(FIXTURE_CASES)('$fixture', (row) => {
    const dir = fixtureDir(row.fixture);
    expect(summarize(loadFixture(dir, row), dir)).toEqual(row.expected);
  });

  test('the crlf fixture really has CRLF line ends', () => {
    const text = readFileSync(join(fixtureDir('crlf'), 'php-fpm.conf'), 'utf8');
    expect(text.split('\r\n')).toHaveLength(text.split('\n').length);
  });
});

// ---------------------------------------------------------------------------------------------
// Fixtures php-fpm refuses: the parser refuses them too, naming file:line.

const ERROR_CASES = [
  { fixture: 'error-unterminated-section', at: '<dir>/php-fpm.conf:4', message: /the section name '\[www' has no closing '\]'/ },
  { fixture: 'error-include-missing-directory', at: '<dir>/php-fpm.conf:4', message: /cannot expand 'include = pool\.d\/\*\.conf' \(cannot read directory '<dir>\/pool\.d'/ },
  { fixture: 'error-pool-in-global', at: '<dir>/php-fpm.conf:3', message: /'pid = run\/\$pool\.pid' uses \$pool in the \[global\] section/ },
  { fixture: 'error-include-loop', at: '<dir>/loop.d/self.conf:2', message: /nests more than 5 files/ },
  { fixture: 'error-unterminated-quote', at: '<dir>/php-fpm.conf:7', message: /the double-quoted string '"run\/www\.sock' is not closed on this line/ },
  { fixture: 'error-hash-comment', at: '<dir>/php-fpm.conf:3', message: /the key '# php-fpm does not take this line for a comment' has no '='.*'#' is not a comment/ },
  { fixture: 'error-invalid-boolean', at: '<dir>/php-fpm.conf:3', message: /'daemonize = maybe' is not a boolean php-fpm accepts\. Write daemonize = yes or daemonize = no\./ },
  { fixture: 'error-unreadable-include', at: '<dir>/php-fpm.conf:3', message: /cannot read '<dir>\/pool\.d\/broken\.conf'/ },
];

function catchConfigError(run: () => unknown): FpmConfigError {
  try {
    run();
  } catch (error) {
    if (error instanceof FpmConfigError) return error;
    throw error;
  }
  throw new Error('expected an FpmConfigError, but the configuration was accepted');
}

describe('loadFpmConfig on fixtures php-fpm refuses', () => {
  test.each(ERROR_CASES)('$fixture', ({ fixture, at, message }) => {
    const dir = fixtureDir(fixture);
    const error = catchConfigError(() => loadFixture(dir, { usePrefix: true }));
    expect(`${withoutDir(error.file, dir)}:${error.line}`).toBe(at);
    expect(withoutDir(error.message, dir)).toMatch(message);
    expect(withoutDir(error.message, dir).startsWith(`${at}: `)).toBe(true);
    expect(error).toBeInstanceOf(FpmMultiError);
    expect(error.exitCode).toBe(EXIT_FAILURE);
  });
});

// ---------------------------------------------------------------------------------------------
// Value syntax, one `listen` line at a time. The oracle below checks the same table with php-fpm.

const SNIPPET_HEADER = ['[global]', 'error_log = log/php-fpm.log', '[www]', 'user = www-data', 'pm = static', 'pm.max_children = 1'];
const SNIPPET_LINE = SNIPPET_HEADER.length + 1;
const SNIPPET_ENV = { FPM_T: 'tv' };
/** The parser throws (and php-fpm refuses). */
const ERROR = { outcome: 'error' } as const;
/** The parser returns with a warning that php-fpm refuses it (and php-fpm refuses). */
const REFUSED = { outcome: 'refused' } as const;
type SnippetExpectation = string | typeof ERROR | typeof REFUSED;

const VALUE_CASES: [line: string, listen: SnippetExpectation][] = [
  ['listen = /run/x.sock ; trailing comment', '/run/x.sock'],
  ['listen = /run/x.sock # not a comment', '/run/x.sock # not a comment'],
  ['listen = "/run/a b;c.sock"', '/run/a b;c.sock'],
  ["listen = '/run/${FPM_T}.sock'", '/run/${FPM_T}.sock'],
  ['listen = "/run/${FPM_T}/x\\"y\\\\z\\n.sock"', '/run/tv/x"y\\z\\n.sock'],
  ['listen = /run/${FPM_T}', '/run/tv'],
  ['listen = /run/${FPM_UNSET}z', '/run/z'],
  ['listen = /run/${FPM_T:-default}', '/run/'],
  ['listen = "/run/"${FPM_T}"/x"', '/run/tv/x'],
  ['listen = /run/ "x" y', '/run/xy'],
  ["listen = /run/a 'b' c", '/run/a b c'],
  ["listen = /run/a'b", '/run/a'],
  ["listen = /run/a 'b", '/run/a '],
  ['listen = "\\${FPM_T}"', '<dir>/${FPM_T}'],
  ['listen = "/run/C:\\dir\\"', '/run/C:\\dir\\'],
  ['listen = 1|2', '3'],
  ['listen = 9000 | 1', '9001'],
  ['listen = 1|2&3', '3'],
  ['listen = E_ALL & ~E_NOTICE', '32759'],
  ['listen = ~1', '<dir>/-2'],
  ['listen = !1', '0'],
  ['listen = (8)', '8'],
  ['listen = yes', '1'],
  ['listen = On', '1'],
  ['listen = yes.sock', '<dir>/yes.sock'],
  ['listen = PHP_UNKNOWN_CONSTANT', '<dir>/PHP_UNKNOWN_CONSTANT'],
  ['listen = $pool.sock', '<dir>/www.sock'],
  ["listen = '$pool.sock'", '<dir>/www.sock'],
  ['listen = [::1]:9000', '[::1]:9000'],
  ['listen = a$b', '<dir>/a$b'],
  ['LISTEN = /run/upper', '/run/upper'],
  ['listen\t=\t/run/tab\t', '/run/tab'],
  ['listen = /run/a\\b', '/run/a\\b'],
  ["listen = 'x' ; c", '<dir>/x'],
  ['listen = "x";y', '<dir>/x'],
  ['listen = a=b', ERROR],
  ['listen = "open', ERROR],
  ["listen = 'open", ERROR],
  ["listen = ''", ERROR],
  ["listen = /run/a''b", ERROR],
  ['listen = ${}', ERROR],
  ['listen = ${FPM_T', ERROR],
  ['listen = yes x', ERROR],
  ['listen = (1', ERROR],
  ['listen = a\\"b', ERROR],
  ['listen', ERROR],
  ['listen = no', REFUSED],
  ['listen =', REFUSED],
  ['listen = ""', REFUSED],
  ['# listen = /run/x', REFUSED],
  ['listen[a] = /run/x', REFUSED],
  ['ping.path = ping', REFUSED],
  ['pm.status_path = "/a b"', REFUSED],
];

const VIRTUAL_DIR = '/virtual';

/** An in-memory reader: files by absolute path; glob supports wildcards in the last segment. */
function memoryReader(files: Record<string, string>): FpmConfigReader & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    readFile(path) {
      reads.push(path);
      const text = files[path];
      if (text === undefined) throw new Error(`ENOENT: no such file '${path}'`);
      return text;
    },
    glob(pattern) {
      const slash = pattern.lastIndexOf('/');
      const directory = pattern.slice(0, slash);
      const matcher = globSegmentToRegExp(pattern.slice(slash + 1));
      const inDirectory = Object.keys(files).filter((path) => path.startsWith(`${directory}/`));
      if (inDirectory.length === 0 && /[*?[]/.test(pattern)) throw new Error(`cannot read directory '${directory}'`);
      return inDirectory.filter((path) => matcher.test(path.slice(slash + 1))).sort();
    },
  };
}

function parseSnippet(line: string): FpmConfig {
  const file = `${VIRTUAL_DIR}/php-fpm.conf`;
  return parseFpmConfig(file, {
    reader: memoryReader({ [file]: [...SNIPPET_HEADER, line, ''].join('\n') }),
    prefix: VIRTUAL_DIR,
    env: SNIPPET_ENV,
  });
}

function isRefused(config: FpmConfig): boolean {
  return config.warnings.some((warning) => warning.refusedByPhpFpm);
}

describe('value syntax (parseFpmConfig, in memory)', () => {
  test.each(VALUE_CASES)('%s', (line, expected) => {
    if (typeof expected === 'string') {
      const config = parseSnippet(line);
      expect(config.pools[0]?.listen).toBe(withDir(expected, VIRTUAL_DIR));
      expect(isRefused(config)).toBe(false);
    } else if (expected === ERROR) {
      const error = catchConfigError(() => parseSnippet(line));
      expect(`${error.file}:${error.line}`).toBe(`${VIRTUAL_DIR}/php-fpm.conf:${SNIPPET_LINE}`);
    } else {
      expect(isRefused(parseSnippet(line))).toBe(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The parser reads only through its reader, and options stand for php-fpm's command line.

describe('parseFpmConfig through an injected reader', () => {
  const files = {
    '/virtual/php-fpm.conf': '[global]\npid = fpm.pid\ninclude = /virtual/pool.d/*.conf\n',
    '/virtual/pool.d/a.conf': '[a]\npm = static\nlisten = a.sock\n',
    '/virtual/pool.d/b.conf': '[b]\npm = static\nlisten = 9000\ndaemonize = no\n',
  };

  test('reads every file through the reader, in php-fpm order, and nothing else', () => {
    const reader = memoryReader(files);
    const config = parseFpmConfig('/virtual/php-fpm.conf', { reader });
    expect(reader.reads).toEqual(['/virtual/php-fpm.conf', '/virtual/pool.d/a.conf', '/virtual/pool.d/b.conf']);
    expect(config.files).toEqual(reader.reads);
    expect(config.pools.map((p) => [p.name, p.listen])).toEqual([['a', '/usr/a.sock'], ['b', '9000']]);
    // `daemonize` in a pool section is an unknown pool entry for php-fpm.
    expect(config.warnings.map((w) => `${w.file}:${w.line} ${w.refusedByPhpFpm}`)).toEqual(['/virtual/pool.d/b.conf:4 true']);
  });

  test.each([
    { options: {}, pid: '/var/fpm.pid', errorLog: '/var/log/php-fpm.log', daemonize: true, listen: '/usr/a.sock' },
    { options: { prefix: '/opt/fpm' }, pid: '/opt/fpm/fpm.pid', errorLog: '/opt/fpm/log/php-fpm.log', daemonize: true, listen: '/opt/fpm/a.sock' },
    { options: { phpPrefix: '/usr/local', localStateDir: '/srv/state', forceDaemonize: false }, pid: '/srv/state/fpm.pid', errorLog: '/srv/state/log/php-fpm.log', daemonize: false, listen: '/usr/local/a.sock' },
  ])('command-line options $options', ({ options, pid, errorLog, daemonize, listen }) => {
    const config = parseFpmConfig('/virtual/php-fpm.conf', { reader: memoryReader(files), ...options });
    expect(config.global.pid).toBe(pid);
    expect(config.global.errorLog).toEqual({ kind: 'file', path: errorLog });
    expect(config.global.daemonize).toBe(daemonize);
    expect(config.pools[0]?.listen).toBe(listen);
  });

  test('-g gives the pid only when the configuration sets none', () => {
    const withPid = parseFpmConfig('/virtual/php-fpm.conf', { reader: memoryReader(files), pidFile: 'other.pid' });
    expect(withPid.global.pid).toBe('/var/fpm.pid');
    const withoutPid = parseFpmConfig('/virtual/pool.d/a.conf', { reader: memoryReader(files), pidFile: 'other.pid' });
    expect(withoutPid.global.pid).toBe('/var/other.pid');
  });

  test('a reader failure on the main file names the file and the fix', () => {
    const error = catchConfigError(() => parseFpmConfig('/virtual/missing.conf', { reader: memoryReader(files) }));
    expect(error.message).toBe("/virtual/missing.conf: cannot read '/virtual/missing.conf' (ENOENT: no such file '/virtual/missing.conf'). Check the path given to php-fpm -y and its permissions.");
  });
});

// ---------------------------------------------------------------------------------------------
// glob(3) as php-fpm calls it.

describe('globFs', () => {
  let root = '';
  beforeAll(() => {
    root = makeScratchDir();
    for (const path of ['d/a.conf', 'd/b.conf', 'd/B.conf', 'd/.hidden.conf', 'd/sub.conf/inner', 'e/nested/z.conf', 'e/nested/y.txt']) {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), '');
    }
    symlinkSync('does-not-exist', join(root, 'd/dangling.conf'));
  });

  test.each([
    ['d/*.conf', ['d/B.conf', 'd/a.conf', 'd/b.conf', 'd/dangling.conf', 'd/sub.conf/']],
    ['d/[ab].conf', ['d/a.conf', 'd/b.conf']],
    ['d/[!a]*.conf', ['d/B.conf', 'd/b.conf', 'd/dangling.conf', 'd/sub.conf/']],
    ['d/[[:upper:]].conf', ['d/B.conf']],
    ['d/?.conf', ['d/B.conf', 'd/a.conf', 'd/b.conf']],
    ['d/.*.conf', ['d/.hidden.conf']],
    ['*/nested/*.conf', ['e/nested/z.conf']],
    ['*/missing/*.conf', []],
    ['d/missing.conf', []],
    ['d/a.conf', ['d/a.conf']],
    ['d/sub.conf', ['d/sub.conf/']],
    ['d/\\*.conf', []],
    ['d/\\a.conf', ['d/a.conf']],
    ['d/*/', ['d/sub.conf/']],
    ['d/.*', ['d/./', 'd/../', 'd/.hidden.conf']],
  ])('%s', (pattern, expected) => {
    expect(globFs(`${root}/${pattern}`).map((path) => path.slice(root.length + 1))).toEqual(expected);
  });

  test.each(['missing/*.conf', 'missing/\\a.conf'])('%s: a fixed directory that cannot be listed aborts, like GLOB_ERR', (pattern) => {
    expect(() => globFs(`${root}/${pattern}`)).toThrow(GlobAbortedError);
    expect(() => globFs(`${root}/${pattern}`)).toThrow(`cannot read directory '${root}/missing'`);
  });
});

// ---------------------------------------------------------------------------------------------
// Listen addresses.

describe('normalizeListen', () => {
  test.each([
    ['/run/php/a.sock', 'unix:/run/php/a.sock'],
    ['/run//php/./x/../a.sock/', 'unix:/run/php/a.sock'],
    ['9000', 'tcp:[::]:9000'],
    ['09000', 'tcp:[::]:9000'],
    ['[::]:9000', 'tcp:[::]:9000'],
    [':::9000', 'tcp:[::]:9000'],
    ['0.0.0.0:9000', 'tcp:0.0.0.0:9000'],
    ['0:9000', 'tcp:0.0.0.0:9000'],
    ['127.0.0.1:9000', 'tcp:127.0.0.1:9000'],
    ['127.1:9000', 'tcp:127.0.0.1:9000'],
    ['0x7f000001:9000', 'tcp:127.0.0.1:9000'],
    ['[127.0.0.1]:9000', 'tcp:127.0.0.1:9000'],
    ['127.0.0.1:+9000', 'tcp:127.0.0.1:9000'],
    ['localhost:9000', 'tcp:127.0.0.1:9000'],
    ['[::ffff:127.0.0.1]:9000', 'tcp:127.0.0.1:9000'],
    ['[::1]:9000', 'tcp:[::1]:9000'],
    ['::1:9000', 'tcp:[::1]:9000'],
    ['[0:0:0:0:0:0:0:1]:9000', 'tcp:[::1]:9000'],
    ['Example.COM:9000', 'tcp:example.com:9000'],
    ['127.0.0.1:0', 'invalid:127.0.0.1:0'],
    ['70000', 'invalid:70000'],
    ['127.0.0.1:abc', 'invalid:127.0.0.1:abc'],
    ['127.0.0.1:9000abc', 'invalid:127.0.0.1:9000abc'],
    [':9000', 'invalid::9000'],
    ['[::1]', 'invalid:[::1]'],
    ['', 'invalid:'],
  ])('%s -> %s', (listen, key) => {
    expect(normalizeListen(listen).key).toBe(key);
  });
});

const OVERLAP_CASES: [a: string, b: string, overlap: boolean][] = [
  ['9000', '127.0.0.1:9000', true],
  ['9000', '[::1]:9000', true],
  ['[::]:9000', '0.0.0.0:9000', true],
  ['0.0.0.0:9000', '127.0.0.2:9000', true],
  ['0.0.0.0:9000', '[::1]:9000', false],
  ['127.0.0.1:9000', '127.0.0.2:9000', false],
  ['127.0.0.1:9000', '[::1]:9000', false],
  ['127.0.0.1:9000', '127.0.0.1:9001', false],
  ['[::ffff:127.0.0.1]:9000', '127.0.0.1:9000', true],
  ['/run/a.sock', '/run//a.sock', true],
  ['/run/a.sock', '/run/b.sock', false],
  ['/run/a.sock', '9000', false],
  ['example.com:9000', '0.0.0.0:9000', true],
  ['example.com:9000', '127.0.0.1:9000', false],
  ['127.0.0.1:0', '127.0.0.1:0', false],
];

describe('listensOverlap', () => {
  test.each(OVERLAP_CASES)('%s vs %s -> %s', (a, b, overlap) => {
    expect(listensOverlap(normalizeListen(a), normalizeListen(b))).toBe(overlap);
    expect(listensOverlap(normalizeListen(b), normalizeListen(a))).toBe(overlap);
  });
});

// The kernel decides what overlaps: bind the first endpoint as php-fpm does (port 0 picks a
// free port), then try the second on the same port.
function bindTcp(endpoint: ListenEndpoint, port: number): Promise<Server | NodeJS.ErrnoException> {
  if (endpoint.kind !== 'tcp') throw new Error(`not a TCP endpoint: ${endpoint.key}`);
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error));
    // php-fpm binds [::] without IPV6_V6ONLY (seen with `ss -ltn`: "*:9000").
    server.listen({ host: endpoint.host, port, ipv6Only: false, exclusive: true }, () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('listensOverlap agrees with the kernel', () => {
  // Same-port pairs only: the second port is the free one the kernel gave the first bind.
  const ipCases = OVERLAP_CASES.filter(([a, b]) => {
    const endpoints = [normalizeListen(a), normalizeListen(b)];
    return endpoints.every((e) => e.kind === 'tcp' && e.scope !== 'hostname')
      && new Set(endpoints.map((e) => (e.kind === 'tcp' ? e.port : -1))).size === 1;
  });

  test.each(ipCases)('%s vs %s -> %s', async (a, b, overlap) => {
    const first = await bindTcp(normalizeListen(a), 0);
    if (first instanceof Error) throw first;
    const address = first.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const second = await bindTcp(normalizeListen(b), address.port);
    await closeServer(first);
    if (!(second instanceof Error)) await closeServer(second);
    expect(second instanceof Error ? second.code : 'bound').toBe(overlap ? 'EADDRINUSE' : 'bound');
  });
});

// ---------------------------------------------------------------------------------------------
// Conflicts between instances: one fixture directory per case, one php-fpm.conf per instance.

function loadInstances(fixture: string): { name: string; pools: FpmPool[] }[] {
  const dir = fixtureDir(fixture);
  return readdirSync(dir)
    .filter((file) => file.endsWith('.conf'))
    .sort()
    .map((file) => ({ name: file.replace(/\.conf$/, ''), pools: loadFpmConfig(join(dir, file), { prefix: dir, env: {} }).pools }));
}

const CONFLICT_CASES: { fixture: string; conflicts: string[] }[] = [
  { fixture: 'conflict-unix', conflicts: ['alpha/web beta/app /run/php/shared.sock'] },
  { fixture: 'conflict-tcp', conflicts: ['alpha/bare beta/loopback [::]:9000 and 127.0.0.1:9000', 'alpha/named beta/loopback2 127.0.0.1:9002'] },
  {
    fixture: 'conflict-wildcard',
    conflicts: ['alpha/v4any beta/other 0.0.0.0:9100 and 127.0.0.2:9100', 'alpha/dual beta/v6 [::]:9101 and [::1]:9101', 'alpha/mapped beta/plain 127.0.0.1:9102'],
  },
  { fixture: 'conflict-status-listen', conflicts: ['alpha/a_status beta/b 127.0.0.1:9301 and [::]:9301'] },
  { fixture: 'conflict-same-instance', conflicts: ['alpha/x alpha/y 0.0.0.0:9400 and 127.0.0.1:9400'] },
  { fixture: 'no-conflict', conflicts: [] },
];

describe('findListenConflicts', () => {
  test.each(CONFLICT_CASES)('$fixture', ({ fixture, conflicts }) => {
    const found = findListenConflicts(loadInstances(fixture));
    expect(found.map((c) => `${c.first.instance}/${c.first.pool} ${c.second.instance}/${c.second.pool} ${c.address}`)).toEqual(conflicts);
  });

  test('the message names both instances, both pools, where they listen and the fix', () => {
    const [conflict] = findListenConflicts(loadInstances('conflict-unix'));
    const dir = fixtureDir('conflict-unix');
    expect(withoutDir(conflict?.message ?? '', dir)).toBe(
      "instance 'alpha' pool 'web' (<dir>/alpha.conf:5, listen = /run/php/shared.sock) and instance 'beta' pool 'app' (<dir>/beta.conf:5, listen = /run/php//shared.sock) both listen on /run/php/shared.sock. Give each pool its own socket path or port.",
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Oracle: php-fpm8.2 -tt on the same inputs. Its dump is NOTICE lines: "[global]" or "[pool]"
// headers followed by "\tkey = value" lines.

interface PhpFpmDump {
  global: Record<string, string>;
  pools: { name: string; values: Record<string, string> }[];
  warnings: string[];
}

interface PhpFpmRun {
  status: number | null;
  stderr: string;
  dump: PhpFpmDump;
}

const DUMP_LINE = /^\[[^\]]*\] (NOTICE|WARNING): (.*)$/;

function parsePhpFpmDump(stderr: string): PhpFpmDump {
  const dump: PhpFpmDump = { global: {}, pools: [], warnings: [] };
  let section: Record<string, string> | null = null;
  for (const line of stderr.split('\n')) {
    const match = DUMP_LINE.exec(line);
    const level = match?.[1];
    const body = match?.[2];
    if (body === undefined) continue;
    if (level === 'WARNING') {
      dump.warnings.push(body);
      continue;
    }
    const header = /^\[(.*)\]$/.exec(body);
    if (header?.[1] !== undefined) {
      if (header[1] === 'global') {
        section = dump.global;
      } else {
        const values: Record<string, string> = {};
        dump.pools.push({ name: header[1], values });
        section = values;
      }
      continue;
    }
    const entry = /^\t([^=]+?) = (.*)$/.exec(body);
    if (entry?.[1] !== undefined && entry[2] !== undefined && section !== null) section[entry[1]] = entry[2];
  }
  return dump;
}

function runPhpFpmTest(config: string, options: { prefix?: string; env: Record<string, string> }): PhpFpmRun {
  const args = ['-n', '-tt', '-R', ...(options.prefix === undefined ? [] : ['-p', options.prefix]), '-y', config];
  const result = spawnSync(PHP_FPM, args, {
    encoding: 'utf8',
    timeout: PHP_FPM_TIMEOUT_MS,
    env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', ...options.env },
  });
  // A missing binary shows up here as ENOENT: the oracle must fail, never pass vacuously.
  expect(result.error).toBeUndefined();
  return { status: result.status, stderr: result.stderr, dump: parsePhpFpmDump(result.stderr) };
}

const UNDEFINED = 'undefined';

/** The dump fields the controller uses, from php-fpm. */
function phpFields(dump: PhpFpmDump): unknown {
  return {
    pid: dump.global.pid,
    errorLog: dump.global.error_log,
    daemonize: dump.global.daemonize,
    pools: dump.pools.map(({ name, values }) => ({
      name,
      listen: values.listen,
      pingPath: values['ping.path'],
      pingResponse: values['ping.response'],
      statusPath: values['pm.status_path'],
      pm: values.pm,
      user: values.user,
      prefix: values.prefix,
    })),
  };
}

/** The same fields from the parser, printed the way php-fpm prints them. */
function parserFields(config: FpmConfig): unknown {
  const shown = (value: string | null): string => value ?? UNDEFINED;
  const { errorLog } = config.global;
  return {
    pid: shown(config.global.pid),
    errorLog: errorLog.kind === 'file' ? errorLog.path : 'syslog',
    daemonize: config.global.daemonize ? 'yes' : 'no',
    pools: config.pools.map((p) => ({
      name: p.name,
      listen: shown(p.listen),
      pingPath: shown(p.pingPath),
      pingResponse: shown(p.pingResponse),
      statusPath: shown(p.statusPath),
      // php-fpm prints an unset pm as "static" (PM2STR of 0); the fixtures always set it.
      pm: shown(p.pm),
      user: shown(p.user),
      prefix: shown(p.prefix),
    })),
  };
}

describe('oracle: php-fpm8.2 -tt', () => {
  test('the php-fpm binary is installed', () => {
    expect(existsSync(PHP_FPM), `${PHP_FPM} is missing: install php8.2-fpm, the oracle tests need it`).toBe(true);
  });

  // syslog sends the dump to syslog instead of stderr.
  const oracleFixtures = FIXTURE_CASES.filter((row) => row.expected.errorLog.startsWith('file:'));

  test.each(oracleFixtures)('$fixture: php-fpm reads what the parser reads', (row) => {
    const dir = copyFixture(row.fixture);
    const env = resolveEnv(row.env, dir);
    const php = runPhpFpmTest(join(dir, 'php-fpm.conf'), { ...(row.usePrefix ? { prefix: dir } : {}), env });
    expect(php.status, php.stderr).toBe(0);
    const config = loadFixture(dir, row);
    expect(parserFields(config)).toEqual(phpFields(php.dump));
    const phpIncludeWarnings = php.dump.warnings.filter((w) => w.startsWith('Nothing matches the include pattern'));
    expect(config.warnings.filter((w) => !w.refusedByPhpFpm)).toHaveLength(phpIncludeWarnings.length);
  });

  test.each(ERROR_CASES)('$fixture: php-fpm refuses it too', ({ fixture }) => {
    const dir = copyFixture(fixture);
    const php = runPhpFpmTest(join(dir, 'php-fpm.conf'), { prefix: dir, env: {} });
    expect(php.status, php.stderr).not.toBe(0);
    expect(php.stderr).toMatch(/ERROR: |PHP:\s+syntax error/);
    expect(() => loadFixture(dir, { usePrefix: true })).toThrow(FpmConfigError);
  });

  test.each(VALUE_CASES)('value %s', (line, expected) => {
    const dir = makeScratchDir();
    mkdirSync(join(dir, 'log'));
    const file = join(dir, 'php-fpm.conf');
    writeFileSync(file, [...SNIPPET_HEADER, line, ''].join('\n'));
    const php = runPhpFpmTest(file, { prefix: dir, env: SNIPPET_ENV });
    if (typeof expected === 'string') {
      expect(php.status, php.stderr).toBe(0);
      expect(php.dump.pools[0]?.values.listen).toBe(withDir(expected, dir));
      const config = loadFpmConfig(file, { prefix: dir, env: SNIPPET_ENV });
      expect(config.pools[0]?.listen).toBe(php.dump.pools[0]?.values.listen);
    } else {
      expect(php.status, php.stderr).not.toBe(0);
    }
  });
});
