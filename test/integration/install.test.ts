// Tests of scripts/install.sh: the tree it installs into a DESTDIR, the conf.d example in both
// forms, EPREFIX as an ordinary user, and a real install followed by `rc-service php-fpm start`.
// They fail (never skip) when OpenRC or php-fpm8.2 is missing: scripts/test installs them.

import { execFileSync } from 'node:child_process';
import {
  chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync,
  utimesSync, writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CONF_EXAMPLE, controller, ensureSoftlevel, fcgiGet, INSTALL_SCRIPT, isMarkedStarted, killProcesses, lexists,
  makeScratch, rcService, removeFile, renderRunscript, REPO, requireTools, run, show,
  waitForNoProcesses, writeFpmInstance, type FpmInstance, type RunResult, type Scratch,
} from '../helpers/openrc.js';

const NOBODY = 65534;
/** The controller, relative to the root of an install: one bundled file. */
const CONTROLLER = 'usr/lib/php-fpm-multi/php-fpm-multi.cjs';
// The node running the tests comes first on PATH: the installed command runs the node install.sh finds.
const BASE_ENV = { PATH: `${dirname(process.execPath)}:/usr/sbin:/usr/bin:/sbin:/bin`, LANG: 'C.UTF-8' };

let scratch: Scratch;

function install(args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> {
  return run('sh', [INSTALL_SCRIPT, ...args], { env: { ...BASE_ENV, HOME: join(scratch.dir, 'home'), ...env }, timeoutMs: 60_000 });
}

/** Every file and symlink under a directory, relative, sorted; directories are implied. */
function listTree(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else found.push(relative(root, path));
    }
  };
  if (existsSync(root)) walk(root);
  return found.sort();
}

function mode(file: string): number {
  return statSync(file).mode & 0o7777;
}

/**
 * The example with its example assignments uncommented (`# NAME=…` and `# NAME=( … )` blocks of
 * upper-case names: prose such as "# key=value words" stays a comment), so that the shells and
 * the controller can read what it suggests. Only the first example of each variable is taken
 * (the array-form example repeats its instances in the string form).
 */
function uncommentExamples(text: string): string {
  const out: string[] = [];
  const assigned = new Set<string>();
  let inArray = false;
  for (const line of text.split('\n')) {
    const assignment = /^# ?([A-Z_][A-Za-z0-9_]*)\+?=/.exec(line);
    if (inArray) {
      out.push(line.replace(/^# ?/, ''));
      if (/^#\s*\)/.test(line)) inArray = false;
    } else if (assignment !== null && !assigned.has(assignment[1]!)) {
      assigned.add(assignment[1]!);
      out.push(line.replace(/^# ?/, ''));
      if (/=\(/.test(line) && !/\)\s*(#.*)?$/.test(line)) inArray = true;
    } else {
      out.push(line);
    }
  }
  return out.join('\n');
}

async function rawWordsOf(file: string): Promise<Record<string, string[]>> {
  const result = await controller(['--conf', file, '--json', 'list']);
  expect(result.code, show(result)).toBe(0);
  const parsed = JSON.parse(result.stdout) as { instances: Array<{ name: string; raw: string[] }> };
  return Object.fromEntries(parsed.instances.map((instance) => [instance.name, instance.raw]));
}

beforeAll(() => {
  requireTools(['man']);
  scratch = makeScratch('install');
  mkdirSync(join(scratch.dir, 'home'));
});

afterAll(() => {
  if (scratch !== undefined) {
    killProcesses(scratch.token);
    scratch.remove();
  }
});

describe('scripts/install.sh into a DESTDIR (packaging)', () => {
  let destdir: string;
  let installed: RunResult;

  beforeAll(async () => {
    destdir = join(scratch.dir, 'image');
    installed = await install([], { DESTDIR: destdir });
  });

  it('is POSIX sh without bashisms', async () => {
    const syntax = await run('sh', ['-n', INSTALL_SCRIPT]);
    expect(syntax.code, show(syntax)).toBe(0);
    const bashisms = await run('checkbashisms', ['-f', INSTALL_SCRIPT]);
    expect(bashisms.code, show(bashisms)).toBe(0);
    expect(bashisms.output).toBe('');
  });

  it('installs the expected tree, and nothing else: the controller is one file (and its code cache), no node_modules', () => {
    expect(installed.code, show(installed)).toBe(0);
    expect(listTree(destdir)).toEqual([
      'etc/conf.d/php-fpm',
      'etc/init.d/php-fpm',
      'etc/logrotate.d/php-fpm-multi',
      'usr/bin/php-fpm-multi',
      'usr/lib/php-fpm-multi/php-fpm-multi.cjs',
      'usr/lib/php-fpm-multi/php-fpm-multi.cjs.v8-cache',
      'usr/share/bash-completion/completions/php-fpm-multi',
      'usr/share/man/man8/php-fpm-multi.8',
    ].sort());
    expect(readdirSync(join(destdir, 'usr/lib/php-fpm-multi'))).toEqual(['php-fpm-multi.cjs', 'php-fpm-multi.cjs.v8-cache']);
    // The build's bundle itself, its npm dependencies inside.
    expect(readFileSync(join(destdir, CONTROLLER), 'utf8')).toBe(readFileSync(join(REPO, 'dist/cli.js'), 'utf8'));
  });

  it('replaces a controller installed by an older version (dist/, package.json, node_modules/) with the one file', async () => {
    const other = join(scratch.dir, 'legacy-image');
    const legacy = join(other, 'usr/lib/php-fpm-multi');
    mkdirSync(join(legacy, 'dist'), { recursive: true });
    mkdirSync(join(legacy, 'node_modules/minimist'), { recursive: true });
    writeFileSync(join(legacy, 'package.json'), '{\n  "name": "php-fpm-multi",\n  "version": "0.0.1"\n}\n');
    writeFileSync(join(legacy, 'dist/cli.js'), '');
    writeFileSync(join(legacy, 'node_modules/minimist/index.js'), '');
    const result = await install([], { DESTDIR: other });
    expect(result.code, show(result)).toBe(0);
    expect(readdirSync(legacy)).toEqual(['php-fpm-multi.cjs', 'php-fpm-multi.cjs.v8-cache']);
    const removed = await install(['--uninstall'], { DESTDIR: other });
    expect(removed.code, show(removed)).toBe(0);
    expect(lexists(legacy)).toBe(false);
  });

  it('sets the modes: programs 0755, the conf.d file 0644', () => {
    expect(mode(join(destdir, 'usr/bin/php-fpm-multi'))).toBe(0o755);
    expect(mode(join(destdir, 'etc/init.d/php-fpm'))).toBe(0o755);
    expect(mode(join(destdir, CONTROLLER))).toBe(0o755);
    expect(mode(join(destdir, `${CONTROLLER}.v8-cache`))).toBe(0o644);
    expect(mode(join(destdir, 'etc/conf.d/php-fpm'))).toBe(0o644);
    // logrotate refuses a config others may write, and skips a log directory group or others may write.
    expect(mode(join(destdir, 'etc/logrotate.d/php-fpm-multi'))).toBe(0o644);
    expect(mode(join(destdir, 'var/log/php-fpm-multi'))).toBe(0o755);
  });

  it('installs the logrotate snippet with its final paths: /var/log/php-fpm-multi/*.log, reopen of every declaration file', () => {
    const snippet = readFileSync(join(destdir, 'etc/logrotate.d/php-fpm-multi'), 'utf8');
    expect(snippet).not.toMatch(/@[A-Za-z_]+@/);
    expect(snippet).not.toContain(destdir);
    expect(snippet).toContain('/var/log/php-fpm-multi/*.log {');
    for (const directive of ['missingok', 'notifempty', 'sharedscripts', 'delaycompress', 'compress']) expect(snippet).toMatch(new RegExp(`^\\t${directive}$`, 'm'));
    expect(snippet).toContain('for conf in /etc/conf.d/php-fpm /etc/conf.d/php-fpm.*; do');
    expect(snippet).toContain('/usr/bin/php-fpm-multi --conf "$conf" reopen >/dev/null 2>&1 || :');
  });

  it('installs the manual page and the bash completion as they are in the checkout, 0644', () => {
    for (const [installedAt, source] of [
      ['usr/share/man/man8/php-fpm-multi.8', 'docs/php-fpm-multi.8'],
      ['usr/share/bash-completion/completions/php-fpm-multi', 'scripts/php-fpm-multi.bash-completion'],
    ] as const) {
      expect(readFileSync(join(destdir, installedAt), 'utf8'), installedAt).toBe(readFileSync(join(REPO, source), 'utf8'));
      expect(mode(join(destdir, installedAt)), installedAt).toBe(0o644);
    }
  });

  it('installs the runscript with its final paths, without DESTDIR', () => {
    const runscript = readFileSync(join(destdir, 'etc/init.d/php-fpm'), 'utf8');
    expect(runscript).toBe(renderRunscript({ eprefix: '', bindir: '/usr/bin', sysconfdir: '/etc' }));
    // Every @PLACEHOLDER@ is filled in (the "$@" of the shell stays).
    expect(runscript).not.toMatch(/@[A-Za-z_]+@/);
    expect(runscript).not.toContain(destdir);
    expect(runscript).toContain('php_fpm_multi="/usr/bin/php-fpm-multi"');
    expect(runscript).toContain('php_fpm_multi_conf="/etc/conf.d/${RC_SVCNAME}"');
  });

  it('installs a command that runs the controller with node and EPREFIX set', () => {
    const command = readFileSync(join(destdir, 'usr/bin/php-fpm-multi'), 'utf8');
    expect(command).toMatch(/^#!\/bin\/sh\n/);
    expect(command).toContain("\nEPREFIX=''\nexport EPREFIX\n");
    expect(command).toMatch(new RegExp(`' '/${CONTROLLER}' "\\$@"\n$`));
    // Through the loader of the code cache, quoted as it is.
    expect(command).toContain(`\nexec '${process.execPath}' -e '${readFileSync(join(REPO, 'scripts/code-cache/loader.js'), 'utf8').trimEnd()}' `);
  });

  it('installs a controller that runs on its own (its dependencies are bundled in)', async () => {
    // Run directly, outside the checkout: no node_modules anywhere above the image.
    const version = await run(join(destdir, CONTROLLER), ['--version'], { env: BASE_ENV });
    expect(version.code, show(version)).toBe(0);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    expect(version.stdout).toBe(`php-fpm-multi ${pkg.version}\n`);
    const list = await run(process.execPath, [join(destdir, CONTROLLER), '--conf', join(destdir, 'etc/conf.d/php-fpm'), 'check']);
    expect(list.code, show(list)).toBe(0);
  });

  describe('the code cache', () => {
    /** The installed command, run from the image (its paths are the final ones: rewritten to the image). */
    async function command(cacheEdit: (cache: string) => void): Promise<RunResult> {
      const image = join(scratch.dir, `code-cache-${Math.random().toString(36).slice(2)}`);
      await run('cp', ['-a', destdir, image]);
      cacheEdit(join(image, `${CONTROLLER}.v8-cache`));
      const text = readFileSync(join(image, 'usr/bin/php-fpm-multi'), 'utf8').replace(`'/${CONTROLLER}'`, `'${join(image, CONTROLLER)}'`);
      writeFileSync(join(image, 'usr/bin/php-fpm-multi'), text);
      return run(join(image, 'usr/bin/php-fpm-multi'), ['--conf', join(image, 'etc/conf.d/php-fpm'), 'list'], {
        env: { ...BASE_ENV, PHP_FPM_MULTI_CODE_CACHE_REPORT: '1' },
      });
    }

    it('is used when it is trustworthy and made by this node for this controller', async () => {
      const result = await command(() => undefined);
      expect(result.code, show(result)).toBe(0);
      expect(result.stderr).toBe('php-fpm-multi: code cache used\n');
      expect(result.stdout).toMatch(/: 0 instances/);
    });

    it('is not used, and the controller runs as usual, when others may write it', async () => {
      const result = await command((cache) => chmodSync(cache, 0o666));
      expect(result.code, show(result)).toBe(0);
      expect(result.stderr).toBe('php-fpm-multi: code cache not used: writable by others, or owned by another user\n');
      expect(result.stdout).toMatch(/: 0 instances/);
    });

    it('is not used when another user owns it', async () => {
      const result = await command((cache) => chownSync(cache, NOBODY, NOBODY));
      expect(result.code, show(result)).toBe(0);
      expect(result.stderr).toBe('php-fpm-multi: code cache not used: writable by others, or owned by another user\n');
    });

    it('is not used when it was made for another controller or node', async () => {
      const result = await command((cache) => {
        const data = readFileSync(cache);
        writeFileSync(cache, Buffer.concat([Buffer.from('v20.0.0 x64 0000\n'), data.subarray(data.indexOf(10) + 1)]));
      });
      expect(result.code, show(result)).toBe(0);
      expect(result.stderr).toBe('php-fpm-multi: code cache not used: made for another node or controller\n');
    });

    it('is not used when the controller changed after it was written (another size or modification time)', async () => {
      const result = await command((cache) => {
        const controller = cache.slice(0, -'.v8-cache'.length);
        utimesSync(controller, new Date(2001, 0, 1), new Date(2001, 0, 1));
      });
      expect(result.code, show(result)).toBe(0);
      expect(result.stderr).toBe('php-fpm-multi: code cache not used: made for another node or controller\n');
    });

    it('is not used when V8 rejects it (damaged), nor when it is missing or not a regular file', async () => {
      const damaged = await command((cache) => {
        const data = readFileSync(cache);
        writeFileSync(cache, Buffer.concat([data.subarray(0, data.indexOf(10) + 1), Buffer.alloc(64, 7)]));
      });
      expect(damaged.code, show(damaged)).toBe(0);
      expect(damaged.stderr).toBe('php-fpm-multi: code cache not used: rejected by V8\n');
      const missing = await command((cache) => rmSync(cache));
      expect(missing.code, show(missing)).toBe(0);
      expect(missing.stderr).toBe('php-fpm-multi: code cache not used: none\n');
      const fifo = await command((cache) => {
        rmSync(cache);
        execFileSync('mkfifo', [cache]);
      });
      expect(fifo.code, show(fifo)).toBe(0);
      expect(fifo.stderr).toBe('php-fpm-multi: code cache not used: not a regular file of at most 16 MiB\n');
    });
  });

  it('installs the conf.d example in the string form where /bin/sh is dash, and says why', () => {
    expect(installed.stdout).toMatch(/string form .*because \/bin\/sh is \S*dash, not bash/);
    const example = readFileSync(join(destdir, 'etc/conf.d/php-fpm'), 'utf8');
    expect(example).toMatch(/because \/bin\/sh here is \S*dash, not bash/);
    // Said first, loudly: one array and every rc-service command fails with only dash's message.
    const [first, ...rest] = example.split('\n');
    expect(first).toMatch(/^# !!! NO ARRAYS IN THIS FILE: \/bin\/sh here is \S*dash, not bash\. !!!$/);
    expect(rest.slice(0, 5).join('\n')).toContain('EVERY rc-service command of the service (start, stop, status)\n# fails with nothing but:   Syntax error: "(" unexpected');
    expect(example).not.toMatch(/^# ?FPM_\w+=\(/m);
    expect(example).toContain('# FPM_slot_1="slot=php8.2 config=/etc/php/fpm-php8.2/php-fpm.conf"');
  });

  it('the string-form example suggests exactly the words of the array form, and dash reads it', async () => {
    const arrayForm = join(scratch.dir, 'array-form.conf');
    const stringForm = join(scratch.dir, 'string-form.conf');
    writeFileSync(arrayForm, uncommentExamples(readFileSync(CONF_EXAMPLE, 'utf8')));
    writeFileSync(stringForm, uncommentExamples(readFileSync(join(destdir, 'etc/conf.d/php-fpm'), 'utf8')));
    const arrayWords = await rawWordsOf(arrayForm);
    expect(Object.keys(arrayWords).length).toBeGreaterThanOrEqual(2);
    expect(await rawWordsOf(stringForm)).toEqual(arrayWords);
    const dash = await run('dash', ['-c', '. "$1"', 'dash', stringForm]);
    expect(dash.code, show(dash)).toBe(0);
    const dashOnArrays = await run('dash', ['-c', '. "$1"', 'dash', arrayForm]);
    expect(dashOnArrays.code).not.toBe(0);
  });

  it('CONF_FORM=array installs the example as it is', async () => {
    const other = join(scratch.dir, 'image-array');
    const result = await install(['CONF_FORM=array'], { DESTDIR: other });
    expect(result.code, show(result)).toBe(0);
    expect(readFileSync(join(other, 'etc/conf.d/php-fpm'), 'utf8')).toBe(readFileSync(CONF_EXAMPLE, 'utf8'));
  });

  it('never overwrites an existing conf.d file: the example goes next to it, and it says so', async () => {
    const conf = join(destdir, 'etc/conf.d/php-fpm');
    const mine = 'FPM_slot_mine="slot=8.2 config=/etc/php/mine.conf"\n';
    writeFileSync(conf, mine);
    const again = await install([], { DESTDIR: destdir });
    expect(again.code, show(again)).toBe(0);
    expect(readFileSync(conf, 'utf8')).toBe(mine);
    expect(again.stdout).toContain(`kept your ${conf}; the new example is ${conf}.example`);
    expect(existsSync(`${conf}.example`)).toBe(true);
  });

  it('--uninstall removes what it installed, except the edited conf.d file and a log directory with logs, and says so', async () => {
    const conf = join(destdir, 'etc/conf.d/php-fpm');
    writeFileSync(join(destdir, 'var/log/php-fpm-multi/web.log'), 'a log line\n');
    const result = await install(['--uninstall'], { DESTDIR: destdir });
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toContain(`kept ${conf}: it was edited`);
    expect(result.stdout).toContain(`removed ${join(destdir, 'etc/logrotate.d/php-fpm-multi')}`);
    expect(result.stdout).toContain(`kept ${join(destdir, 'var/log/php-fpm-multi')}: it holds logs`);
    expect(listTree(destdir)).toEqual(['etc/conf.d/php-fpm', 'var/log/php-fpm-multi/web.log']);
  });

  it('--uninstall of an untouched install leaves no file', async () => {
    const other = join(scratch.dir, 'image-pristine');
    expect((await install([], { DESTDIR: other })).code).toBe(0);
    const result = await install(['--uninstall'], { DESTDIR: other });
    expect(result.code, show(result)).toBe(0);
    expect(listTree(other)).toEqual([]);
  });

  it('refuses to replace an init.d/php-fpm that is not its own, unless --force', async () => {
    const other = join(scratch.dir, 'image-foreign');
    mkdirSync(join(other, 'etc/init.d'), { recursive: true });
    const foreign = '#!/sbin/openrc-run\n# the php-fpm service of another package\n';
    writeFileSync(join(other, 'etc/init.d/php-fpm'), foreign);
    const refused = await install([], { DESTDIR: other });
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr).toContain('is not php-fpm-multi\'s runscript');
    expect(readFileSync(join(other, 'etc/init.d/php-fpm'), 'utf8')).toBe(foreign);
    expect(listTree(other)).toEqual(['etc/init.d/php-fpm']);
    const forced = await install(['--force'], { DESTDIR: other });
    expect(forced.code, show(forced)).toBe(0);
    expect(readFileSync(join(other, 'etc/init.d/php-fpm'), 'utf8')).toContain('php-fpm-multi');
  });

  it('has --help and refuses unknown arguments', async () => {
    const result = await install(['--help']);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toContain('DESTDIR');
    expect(result.stdout).toContain('EPREFIX');
    const bad = await install(['--bogus']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unknown argument: --bogus');
  });
});

describe('--uninstall while instances started with php-fpm-multi start still run (tryout 2, finding 8)', () => {
  it('refuses, naming each live record and the command that stops it; a stale record does not count; after the stop it uninstalls', async () => {
    const destdir = join(scratch.dir, 'image-running');
    expect((await install([], { DESTDIR: destdir })).code).toBe(0);
    // The installed file's default run directory, as seen inside the DESTDIR; a declaration of
    // the test names it (the installed file itself would name /run).
    const runDir = join(destdir, 'run/php-fpm-multi/php-fpm');
    mkdirSync(dirname(runDir), { recursive: true, mode: 0o755 });
    const instance = writeFpmInstance(scratch, 'uninstall', 'u1');
    const decl = join(scratch.dir, 'uninstall', 'php-fpm');
    writeFileSync(decl, `FPM_run_dir=${runDir}\nFPM_slot_u1="slot=8.2 config=${instance.config}"\n`);
    const command = join(destdir, 'usr/bin/php-fpm-multi');
    // The built controller (the installed command names its final path, outside the DESTDIR).
    const started = await controller(['--conf', decl, 'start']);
    expect(started.code, show(started)).toBe(0);
    // A stale record beside it: its pid (this test's) runs, but not since the recorded start time.
    writeFileSync(join(runDir, 'old.record.json'), JSON.stringify({ name: 'old', pid: process.pid, startTimeTicks: 1, uid: 0 }));
    const refused = await install(['--uninstall'], { DESTDIR: destdir });
    expect(refused.code, show(refused)).toBe(1);
    const pid = Number(readFileSync(join(runDir, 'u1.pid'), 'utf8'));
    expect(refused.stderr).toContain('instances started by php-fpm-multi still run; stop them first (then run --uninstall again), or use --force');
    expect(refused.stderr).toContain(`  u1 (pid ${pid}, ${runDir}/u1.record.json): php-fpm-multi --conf /etc/conf.d/php-fpm stop u1`);
    expect(refused.stderr).not.toContain('old');
    expect(existsSync(command)).toBe(true);
    // Followed (with the declaration that names this run directory): stopped, then uninstalled.
    const stopped = await controller(['--conf', decl, 'stop', 'u1']);
    expect(stopped.code, show(stopped)).toBe(0);
    const removed = await install(['--uninstall'], { DESTDIR: destdir });
    expect(removed.code, show(removed)).toBe(0);
    expect(existsSync(command)).toBe(false);
  });
});

describe('scripts/install.sh with EPREFIX, as an ordinary user (Gentoo Prefix)', () => {
  let prefix: string;
  let xdg: string;
  let installed: RunResult;
  let instance: FpmInstance;
  const asNobody = (program: string, args: readonly string[], env: Record<string, string> = {}): Promise<RunResult> =>
    run('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', program, ...args], {
      env: { ...BASE_ENV, HOME: join(scratch.dir, 'nobody-home'), ...env },
    });

  beforeAll(async () => {
    prefix = join(scratch.dir, 'prefix');
    xdg = join(scratch.dir, 'xdg');
    for (const dir of [prefix, xdg, join(scratch.dir, 'nobody-home')]) {
      mkdirSync(dir, { mode: 0o700 });
      chownSync(dir, NOBODY, NOBODY);
    }
    chmodSync(prefix, 0o755);
    installed = await asNobody('sh', [INSTALL_SCRIPT], { EPREFIX: prefix });
  });

  afterAll(async () => {
    await asNobody(join(prefix, 'usr/bin/php-fpm-multi'), ['stop'], { XDG_RUNTIME_DIR: xdg }).catch(() => undefined);
  });

  it('installs everything under the prefix, as that user', () => {
    expect(installed.code, show(installed)).toBe(0);
    for (const file of ['usr/bin/php-fpm-multi', CONTROLLER, 'etc/init.d/php-fpm', 'etc/conf.d/php-fpm']) {
      expect(statSync(join(prefix, file)).uid, file).toBe(NOBODY);
    }
  });

  it('puts the prefix into every default path of the runscript', () => {
    const runscript = readFileSync(join(prefix, 'etc/init.d/php-fpm'), 'utf8');
    expect(runscript).toBe(renderRunscript({ eprefix: prefix, bindir: `${prefix}/usr/bin`, sysconfdir: `${prefix}/etc` }));
    expect(runscript.split('\n')[0]).toBe(`#!${prefix}/sbin/openrc-run`);
    expect(runscript).toContain(`php_fpm_multi="${prefix}/usr/bin/php-fpm-multi"`);
    expect(runscript).toContain(`php_fpm_multi_conf="${prefix}/etc/conf.d/\${RC_SVCNAME}"`);
    expect(runscript).not.toMatch(/[" ]\/(usr|etc|sbin)\//);
  });

  it('gives the controller the prefix: its declaration file and php-fpm programs are under it', async () => {
    mkdirSync(join(prefix, 'usr/sbin'), { recursive: true });
    symlinkSync('/usr/sbin/php-fpm8.2', join(prefix, 'usr/sbin/php-fpm8.2'));
    instance = writeFpmInstance(scratch, 'prefix-fpm', 'x');
    chownSync(instance.dir, NOBODY, NOBODY);
    writeFileSync(join(prefix, 'etc/conf.d/php-fpm'), `FPM_slot_x="slot=8.2 config=${instance.config}"\n`);
    const list = await asNobody(join(prefix, 'usr/bin/php-fpm-multi'), ['--json', 'list'], { XDG_RUNTIME_DIR: xdg });
    expect(list.code, show(list)).toBe(0);
    const parsed = JSON.parse(list.stdout) as { conf: string; instances: Array<{ binary: string; pidfile: string }> };
    expect(parsed.conf).toBe(join(prefix, 'etc/conf.d/php-fpm'));
    expect(parsed.instances[0]?.binary).toBe(join(prefix, 'usr/sbin/php-fpm8.2'));
    expect(parsed.instances[0]?.pidfile).toBe(join(xdg, 'php-fpm-multi/php-fpm/x.pid'));
  });

  it('runs php-fpm as that user: start, serve, status, stop', async () => {
    const command = join(prefix, 'usr/bin/php-fpm-multi');
    const start = await asNobody(command, ['start'], { XDG_RUNTIME_DIR: xdg });
    expect(start.code, show(start)).toBe(0);
    expect(await fcgiGet(instance)).toMatch(/^instance=x /);
    const status = await asNobody(command, ['status'], { XDG_RUNTIME_DIR: xdg });
    expect(status.code, show(status)).toBe(0);
    const stop = await asNobody(command, ['stop'], { XDG_RUNTIME_DIR: xdg });
    expect(stop.code, show(stop)).toBe(0);
    expect(await waitForNoProcesses(instance.dir, 1_000)).toEqual([]);
  });

  it('--uninstall as that user removes it again, keeping the edited conf.d file', async () => {
    const result = await asNobody('sh', [INSTALL_SCRIPT, '--uninstall'], { EPREFIX: prefix });
    expect(result.code, show(result)).toBe(0);
    expect(listTree(prefix)).toEqual(['etc/conf.d/php-fpm', 'usr/sbin/php-fpm8.2']);
  });
});

describe('a real install, then rc-service php-fpm start', () => {
  const TARGETS = [
    '/usr/lib/php-fpm-multi', '/usr/bin/php-fpm-multi', '/etc/init.d/php-fpm', '/etc/conf.d/php-fpm', '/etc/conf.d/php-fpm.example',
    '/usr/share/man/man8/php-fpm-multi.8', '/usr/share/bash-completion/completions/php-fpm-multi',
    '/etc/logrotate.d/php-fpm-multi',
  ];
  let softlevel: { restore(): void } | undefined;
  let createdConfDir = false;
  let ready = false;

  beforeAll(async () => {
    const present = TARGETS.filter(lexists);
    if (present.length > 0) {
      throw new Error(`a real install would replace ${present.join(', ')}: remove it first (scripts/install.sh --uninstall), then run the tests again`);
    }
    if (isMarkedStarted('php-fpm')) throw new Error('OpenRC has a php-fpm service started: this test installs its own');
    createdConfDir = !existsSync('/etc/conf.d');
    softlevel = ensureSoftlevel();
    ready = true;
  });

  afterAll(async () => {
    try {
      if (!ready) return;
      if (existsSync('/etc/conf.d/php-fpm')) await controller(['--conf', '/etc/conf.d/php-fpm', 'stop']);
      if (isMarkedStarted('php-fpm') && existsSync('/etc/init.d/php-fpm')) await run('rc-service', ['php-fpm', 'zap'], { env: BASE_ENV });
      await install(['--uninstall', '--force']);
      removeFile('/etc/conf.d/php-fpm');
      removeFile('/etc/conf.d/php-fpm.example');
      if (createdConfDir) await run('rmdir', ['/etc/conf.d']);
      killProcesses(scratch.token);
    } finally {
      softlevel?.restore();
    }
  });

  it('installs into / with a php-fpm-multi command on PATH', async () => {
    const result = await install([]);
    expect(result.code, show(result)).toBe(0);
    const which = await run('sh', ['-c', 'command -v php-fpm-multi'], { env: BASE_ENV });
    expect(which.stdout.trim()).toBe('/usr/bin/php-fpm-multi');
    const help = await run('php-fpm-multi', ['--help'], { env: BASE_ENV });
    expect(help.code, show(help)).toBe(0);
    expect(readFileSync('/etc/init.d/php-fpm', 'utf8')).toBe(renderRunscript({ eprefix: '', bindir: '/usr/bin', sysconfdir: '/etc' }));
    expect(lstatSync('/etc/conf.d/php-fpm').isFile()).toBe(true);
    // man finds the installed page by its name.
    const page = await run('man', ['-w', 'php-fpm-multi'], { env: BASE_ENV });
    expect(page.stdout.trim(), show(page)).toBe('/usr/share/man/man8/php-fpm-multi.8');
    expect(readdirSync('/usr/lib/php-fpm-multi')).toEqual(['php-fpm-multi.cjs', 'php-fpm-multi.cjs.v8-cache']);
    const cached = await run('php-fpm-multi', ['--version'], { env: { ...BASE_ENV, PHP_FPM_MULTI_CODE_CACHE_REPORT: '1' } });
    expect(cached.stderr).toBe('php-fpm-multi: code cache used\n');
  });

  it('rc-service php-fpm start, status, stop with the installed runscript and controller', async () => {
    const one = writeFpmInstance(scratch, 'real', 'one');
    const two = writeFpmInstance(scratch, 'real', 'two');
    writeFileSync('/etc/conf.d/php-fpm', [
      `FPM_slot_one="slot=8.2 config=${one.config}"`,
      `FPM_slot_two="slot=8.2 config=${two.config}"`,
      `FPM_run_dir="${join(scratch.dir, 'real', 'run')}"`,
      '',
    ].join('\n'));
    const start = await rcService('php-fpm', 'start', 'dash', scratch);
    expect(start.code, show(start)).toBe(0);
    expect(isMarkedStarted('php-fpm')).toBe(true);
    for (const instance of [one, two]) expect(await fcgiGet(instance)).toMatch(new RegExp(`^instance=${instance.name} `));
    const status = await rcService('php-fpm', 'status', 'dash', scratch);
    expect(status.code, show(status)).toBe(0);
    const direct = await run('php-fpm-multi', ['status'], { env: BASE_ENV });
    expect(direct.code, show(direct)).toBe(0);

    const refused = await install(['--uninstall']);
    expect(refused.code, show(refused)).toBe(1);
    expect(refused.stderr).toContain('stop it first (rc-service php-fpm stop)');
    expect(existsSync('/etc/init.d/php-fpm')).toBe(true);

    const stop = await rcService('php-fpm', 'stop', 'dash', scratch);
    expect(stop.code, show(stop)).toBe(0);
    expect(await waitForNoProcesses(scratch.token, 1_000)).toEqual([]);
    const stopped = await rcService('php-fpm', 'status', 'dash', scratch);
    expect(stopped.code, show(stopped)).toBe(3);
  });

  it('--uninstall removes it, keeping the edited /etc/conf.d/php-fpm', async () => {
    const result = await install(['--uninstall']);
    expect(result.code, show(result)).toBe(0);
    expect(result.stdout).toContain('kept /etc/conf.d/php-fpm: it was edited');
    for (const target of [
      '/usr/lib/php-fpm-multi', '/usr/bin/php-fpm-multi', '/etc/init.d/php-fpm', '/usr/share/man/man8/php-fpm-multi.8',
      '/usr/share/bash-completion/completions/php-fpm-multi', '/etc/logrotate.d/php-fpm-multi',
    ]) expect(lexists(target), target).toBe(false);
    expect(existsSync('/etc/conf.d/php-fpm')).toBe(true);
  });

});
