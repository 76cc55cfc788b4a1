import { describe, expect, test } from 'vitest';
import type { Declaration, ShellValue, Variable } from '../../src/declaration/declaration.js';
import { buildModel, type FileProbe, type ModelContext } from '../../src/model/build.js';
import type { Model } from '../../src/model/instance.js';

const FILES = new Set(['/etc/php/a.conf', '/etc/php/b.conf', '/etc/php/c.conf']);
const EXECUTABLES = new Set(['/usr/sbin/php-fpm8.2', '/usr/lib64/php8.3/bin/php-fpm', '/opt/php/bin/php-fpm']);
const PROBE: FileProbe = { isFile: (f) => FILES.has(f) || EXECUTABLES.has(f), isExecutable: (f) => EXECUTABLES.has(f), listDirectory: () => [] };
const ROOT: ModelContext = { env: { PATH: '/usr/bin:/bin' }, uid: 0, probe: PROBE };

function array(...elements: string[]): ShellValue {
  return { kind: 'array', elements };
}
function string(value: string): ShellValue {
  return { kind: 'string', value };
}
function declare(variables: Record<string, ShellValue>, file = '/etc/conf.d/php-fpm'): Declaration {
  return {
    file,
    variables: Object.entries(variables).map(([name, value], index): Variable => ({ name, value, line: index + 1, column: 1 })),
  };
}
function build(variables: Record<string, ShellValue>, context: ModelContext = ROOT): Model {
  return buildModel(declare(variables), context);
}
function problemsOf(value: ShellValue, extra: Record<string, ShellValue> = {}): string[] {
  return build({ ...extra, FPM_slot_1: value }).instances.at(-1)!.problems;
}

describe('an instance', () => {
  test('in the array form, with every key', () => {
    const model = build({
      FPM_slot_1: array(
        'slot=php8.2', 'config=/etc/php/a.conf', 'pidfile=/run/php/a.pid', 'prefix=/var/www', 'php_ini=/etc/php/php.ini',
        'ini_scan_dir=/etc/php/conf.d:/etc/php/extra', 'env=TZ=UTC', 'env=EMPTY=', 'args=-d "memory_limit=256M" -R',
        'nice=5', 'oom_score_adj=-500', 'start_timeout=10', 'stop_timeout=2.5', 'enabled=yes',
      ),
    });
    expect(model.instances).toEqual([
      {
        name: '1', variable: 'FPM_slot_1', line: 1,
        raw: [
          'slot=php8.2', 'config=/etc/php/a.conf', 'pidfile=/run/php/a.pid', 'prefix=/var/www', 'php_ini=/etc/php/php.ini',
          'ini_scan_dir=/etc/php/conf.d:/etc/php/extra', 'env=TZ=UTC', 'env=EMPTY=', 'args=-d "memory_limit=256M" -R',
          'nice=5', 'oom_score_adj=-500', 'start_timeout=10', 'stop_timeout=2.5', 'enabled=yes',
        ],
        slot: 'php8.2', config: '/etc/php/a.conf', binary: '/usr/sbin/php-fpm8.2', pidfile: '/run/php/a.pid',
        prefix: '/var/www', phpIni: '/etc/php/php.ini', iniScanDir: '/etc/php/conf.d:/etc/php/extra',
        env: { TZ: 'UTC', EMPTY: '' }, args: ['-d', 'memory_limit=256M', '-R'], nice: 5, oomScoreAdj: -500,
        user: null, group: null, startTimeoutMs: 10_000, stopTimeoutMs: 2_500, enabled: true, problems: [],
      },
    ]);
  });

  test('in the string form, split with shell quoting', () => {
    const [instance] = build({ FPM_slot_web: string(`slot=8.3 'config=/etc/php/b.conf' env=A="x y"`) }).instances;
    expect(instance).toMatchObject({
      name: 'web', raw: ['slot=8.3', 'config=/etc/php/b.conf', 'env=A=x y'], binary: '/usr/lib64/php8.3/bin/php-fpm',
      env: { A: 'x y' }, problems: [],
    });
  });

  test('defaults: timeouts, enabled, pidfile in the run directory named after the file', () => {
    const [instance] = build({ FPM_slot_1: array('slot=8.2', 'config=/etc/php/a.conf') }).instances;
    expect(instance).toMatchObject({
      pidfile: '/run/php-fpm-multi/php-fpm/1.pid', startTimeoutMs: 30_000, stopTimeoutMs: 35_000, enabled: true,
      nice: null, oomScoreAdj: null, user: null, group: null, prefix: null, phpIni: null, iniScanDir: null, env: {}, args: [],
    });
  });

  test('binary= overrides the slot', () => {
    const [instance] = build({ FPM_slot_1: array('slot=8.2', 'binary=/opt/php/bin/php-fpm', 'config=/etc/php/a.conf') }).instances;
    expect(instance!.binary).toBe('/opt/php/bin/php-fpm');
  });

  test('instances keep the order of their first assignment', () => {
    const model = build({ FPM_slot_b: array('config=/etc/php/a.conf'), OTHER: string('x'), FPM_slot_a: array('config=/etc/php/b.conf') });
    expect(model.instances.map((i) => i.name)).toEqual(['b', 'a']);
  });
});

describe('problems of one instance', () => {
  test.each([
    [['slot=8.2', 'confg=/etc/php/a.conf', 'config=/etc/php/a.conf'], 'unknown key "confg" (did you mean "config"?)'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'stop_timout=3'], 'unknown key "stop_timout" (did you mean "stop_timeout"?)'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'colour=www'], 'unknown key "colour"; known keys: slot, config'],
    [['slot=8.2', '/etc/php/b.conf', 'config=/etc/php/a.conf'], '"/etc/php/b.conf" is not key=value'],
    [['slot=8.2', '=x', 'config=/etc/php/a.conf'], '"=x" is not key=value'],
    [['slot=8.2'], 'config= is missing'],
    [['slot=8.2', 'config=etc/php/a.conf'], 'config=etc/php/a.conf: must be an absolute path'],
    [['slot=8.2', 'config=/etc/php/missing.conf'], 'config=/etc/php/missing.conf: no such file'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'config=/etc/php/b.conf'], 'config=/etc/php/b.conf: is given twice'],
    [['slot=php', 'config=/etc/php/a.conf'], 'slot=php: must name a PHP version like "php8.2" or "8.2"'],
    [['config=/etc/php/a.conf'], 'neither slot= nor binary= is set'],
    // Issue 9 case 7: the layouts tried, not every $PATH directory (the installed slots: see below).
    [['slot=7.4', 'config=/etc/php/a.conf'], 'slot=7.4: php-fpm 7.4 is not installed; no php-fpm of any version is installed where php-fpm-multi looks; install one (Debian: apt-get install php7.4-fpm), or set binary=/path/to/php-fpm (looked for /usr/lib64/php7.4/bin/php-fpm, /usr/lib/php7.4/bin/php-fpm, /usr/sbin/php-fpm7.4, /usr/sbin/php-fpm74, /opt/remi/php74/root/usr/sbin/php-fpm, and php-fpm7.4, php-fpm74 on $PATH)'],
    [['binary=/usr/bin/php', 'config=/etc/php/a.conf'], 'binary=/usr/bin/php: not an executable file'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'nice=20'], 'nice=20: must be from -20 to 19'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'nice=high'], 'nice=high: must be a whole number from -20 to 19'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'oom_score_adj=-1001'], 'oom_score_adj=-1001: must be from -1000 to 1000'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'start_timeout=0'], 'start_timeout=0: must be a number of seconds greater than 0'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'stop_timeout=5s'], 'stop_timeout=5s: must be a number of seconds'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'enabled=true'], 'enabled=true: must be "yes" or "no"'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'env=1X=y'], 'env=1X=y: must be NAME=VALUE'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'env=NOVALUE'], 'env=NOVALUE: must be NAME=VALUE'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'env=A=1', 'env=A=2'], 'env=A=2: sets A twice'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'env=PHP_INI_SCAN_DIR=/x'], 'use the ini_scan_dir key'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'args=--fpm-config=/x'], 'must not contain --fpm-config: use the config= key instead'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'args=-y /x'], 'must not contain -y: use the config= key instead'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'args=-g/run/x.pid'], 'must not contain -g: use the pidfile= key instead'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'args=-F'], 'must not contain -F: the controller runs php-fpm in the background'],
    [['slot=8.2', 'config=/etc/php/a.conf', 'args=-tt'], 'must not contain -t:'],
    [['slot=8.2', 'config=/etc/php/a.conf', "args=-d 'x"], 'args=-d \'x: cannot be split into words'],
  ])('%j: %s', (words, problem) => {
    const problems = problemsOf(array(...words));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });

  test('a string form that cannot be split is a problem of that instance only', () => {
    const model = build({ FPM_slot_1: string('slot=8.2 "config=/etc/php/a.conf'), FPM_slot_2: array('slot=8.2', 'config=/etc/php/b.conf') });
    expect(model.instances[0]!.problems).toEqual([expect.stringContaining('its value cannot be split into words')]);
    expect(model.instances[0]!.raw).toEqual([]);
    expect(model.instances[1]!.problems).toEqual([]);
  });

  test('the name after FPM_slot_ must not be empty', () => {
    expect(build({ FPM_slot_: array('slot=8.2', 'config=/etc/php/a.conf') }).instances[0]!.problems).toEqual([
      expect.stringContaining('must be letters, digits or _'),
    ]);
  });
});

describe('between instances', () => {
  test('two enabled instances sharing a config or a pidfile', () => {
    const model = build({
      FPM_slot_1: array('slot=8.2', 'config=/etc/php/a.conf', 'pidfile=/run/x.pid'),
      FPM_slot_2: array('slot=8.2', 'config=/etc/php//a.conf'),
      FPM_slot_3: array('slot=8.2', 'config=/etc/php/b.conf', 'pidfile=/run/x.pid'),
      FPM_slot_4: array('slot=8.2', 'config=/etc/php/b.conf', 'enabled=no'),
    });
    // Issue 9 case 7: the first declared keeps the file (it may be the one running: stop and
    // status must reach it); the later one is the one to fix, and the group is reported once.
    expect(model.instances.map((i) => i.problems)).toEqual([
      [],
      ['config /etc/php/a.conf is already used by FPM_slot_1 (line 1), declared first; give this instance its own config'],
      ['pidfile /run/x.pid is already used by FPM_slot_1 (line 1), declared first; give this instance its own pidfile'],
      [],
    ]);
    expect(model.conflicts).toEqual([
      'config /etc/php/a.conf is used by FPM_slot_1 (line 1) and also by FPM_slot_2 (line 2): give the later one its own config (or remove it, or set enabled=no)',
      'pidfile /run/x.pid is used by FPM_slot_1 (line 1) and also by FPM_slot_3 (line 3): give the later one its own pidfile (or remove it, or set enabled=no)',
    ]);
  });
});

describe('FPM_defaults', () => {
  test('applies to every instance that does not set the key itself', () => {
    const model = build({
      FPM_defaults: string('slot=8.2 stop_timeout=60 env=TZ=UTC env=LANG=C nice=3'),
      FPM_slot_1: array('config=/etc/php/a.conf'),
      FPM_slot_2: array('slot=8.3', 'config=/etc/php/b.conf', 'env=TZ=Europe/Paris', 'nice=0'),
    });
    expect(model.problems).toEqual([]);
    expect(model.instances.map((i) => [i.slot, i.stopTimeoutMs, i.env, i.nice])).toEqual([
      ['8.2', 60_000, { TZ: 'UTC', LANG: 'C' }, 3],
      ['8.3', 60_000, { TZ: 'Europe/Paris', LANG: 'C' }, 0],
    ]);
  });

  test.each([
    ['config=/etc/php/a.conf', '"config" cannot be a default'],
    ['pidfile=/run/a.pid', '"pidfile" cannot be a default'],
    ['stop_timeot=3', 'unknown key "stop_timeot" (did you mean "stop_timeout"?)'],
  ])('%s is a problem of the file', (word, problem) => {
    const model = build({ FPM_defaults: array(word), FPM_slot_1: array('slot=8.2', 'config=/etc/php/a.conf') });
    expect(model.problems).toEqual([expect.stringContaining(`FPM_defaults (line 1): `)]);
    expect(model.problems[0]).toContain(problem);
  });
});

describe('the run directory', () => {
  test.each<[string, ModelContext, Record<string, ShellValue>, string | null]>([
    ['root', ROOT, {}, '/run/php-fpm-multi/php-fpm'],
    ['root on Gentoo Prefix', { ...ROOT, env: { EPREFIX: '/home/g/prefix' } }, {}, '/home/g/prefix/run/php-fpm-multi/php-fpm'],
    ['an ordinary user', { ...ROOT, uid: 1000, env: { XDG_RUNTIME_DIR: '/run/user/1000' } }, {}, '/run/user/1000/php-fpm-multi/php-fpm'],
    ['FPM_run_dir', { ...ROOT, uid: 1000 }, { FPM_run_dir: string('/srv/run//fpm') }, '/srv/run/fpm'],
  ])('%s', (_who, context, extra, runDir) => {
    const model = build({ ...extra, FPM_slot_1: array('slot=8.2', 'config=/etc/php/a.conf') }, context);
    expect(model.problems).toEqual([]);
    expect(model.runDir).toBe(runDir);
    expect(model.instances[0]!.pidfile).toBe(`${runDir}/1.pid`);
  });

  test('an ordinary user without XDG_RUNTIME_DIR must set FPM_run_dir', () => {
    const model = build({ FPM_slot_1: array('slot=8.2', 'config=/etc/php/a.conf') }, { ...ROOT, uid: 1000, env: {} });
    expect(model.runDir).toBeNull();
    expect(model.instances[0]!.pidfile).toBeNull();
    expect(model.problems).toEqual([expect.stringContaining('set FPM_run_dir="/some/dir"')]);
  });

  test.each([[string('run')], [array('/run/x')]])('FPM_run_dir=%j is a problem', (value) => {
    expect(build({ FPM_run_dir: value }).problems).toEqual([expect.stringContaining('must be a string holding an absolute directory path')]);
  });
});

describe('other variables', () => {
  test.each([
    ['FPM_solt_1', 'did you mean "FPM_slot_1"?'],
    ['FPM_default', 'did you mean "FPM_defaults"?'],
    ['fpm_slot_1', 'not a variable php-fpm-multi knows'],
    ['FPM_RUN_DIR', 'did you mean "FPM_run_dir"?'],
  ])('%s is flagged', (name, hint) => {
    const problems = build({ [name]: string('x') }).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(hint);
  });

  test('variables not named FPM_ are the admin’s own', () => {
    expect(build({ PHP_ETC: string('/etc/php'), BASE: array('x') }).problems).toEqual([]);
  });

  test('array variables are listed for the /bin/sh warning', () => {
    const model = build({ FPM_slot_1: array('slot=8.2', 'config=/etc/php/a.conf'), FPM_slot_2: string('slot=8.2 config=/etc/php/b.conf') });
    expect(model.arrayVariables.map((v) => v.name)).toEqual(['FPM_slot_1']);
  });
});

describe('words that are not key=value (tryout 2, finding 7)', () => {
  test('the first five are named, the rest counted in one problem', () => {
    const problems = problemsOf(array('slot=php8.2', 'config=/etc/php/a.conf', ...Array.from({ length: 12 }, (_, i) => `w${i}`)));
    expect(problems.filter((p) => p.includes('is not key=value;'))).toEqual([0, 1, 2, 3, 4].map((i) => `"w${i}" is not key=value; write e.g. "config=/etc/php/fpm/php-fpm.conf"`));
    expect(problems).toContain('… and 7 more words that are not key=value');
    expect(problems).toHaveLength(6);
  });
  test('an instance of more than 4,096 words is one problem naming the count, and none of its words is read', () => {
    const problems = problemsOf(array('slot=php8.2', 'config=/etc/php/a.conf', ...Array.from({ length: 5000 }, () => 'x')));
    expect(problems).toEqual(['has 5002 words, more than the 4096 one variable may have (an instance needs a dozen), so none of them was read; remove the extra words']);
  });
  test('4,096 words are still read', () => {
    const problems = problemsOf(array('slot=php8.2', 'config=/etc/php/a.conf', ...Array.from({ length: 4094 }, () => 'env=A=1')));
    expect(problems).toEqual(['env=A=1: sets A twice; keep one', ...Array.from({ length: 4092 }, () => 'env=A=1: sets A twice; keep one')]);
  });
});
