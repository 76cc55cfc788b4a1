// discover: prints a ready declaration of every php-fpm installed in a distribution layout with
// its default config (src/model/discovery.ts), each instance commented with what was found on
// this machine: the version its binary reports, its pools and listen addresses, the `pid =` line
// check would refuse with the command that fixes it. It only reads; everything goes through the
// System, under $EPREFIX, so that tests serve fake trees of every distribution.
import type { CommandContext } from '../cli/command.js';
import { countOf, reportError, reportWarning } from '../cli/reporter.js';
import { FpmMultiError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { posix as path } from 'node:path';
import { probeFilesOf } from '../model/load.js';
import { DEFAULT_PATH } from '../model/invocation.js';
import {
  chooseBinaryWord, formatDiscovery, listDiscoveryCandidates, nameInstances, type DeclarationForm, type DiscoveredInstance, type DiscoveredPool,
  type DiscoveryCandidate,
} from '../model/discovery.js';
import { listInstalledSlots } from '../model/slot.js';
import { findSystemShell, isBash } from '../process/system-shell.js';
import { errnoCode, type System } from '../process/system.js';

/** `php-fpm -v` answers at once; a binary that hangs is reported, not waited for. */
const VERSION_PROBE_TIMEOUT_MS = 10_000;

/** The first line of `<binary> -v`, bounded in time and length. */
async function askVersion(system: System, binary: string): Promise<DiscoveredInstance['version']> {
  try {
    const result = await system.run(binary, ['-v'], { env: { PATH: DEFAULT_PATH }, timeoutMs: VERSION_PROBE_TIMEOUT_MS });
    if (result.timedOut) return { kind: 'failed', why: `${binary} -v did not answer within ${VERSION_PROBE_TIMEOUT_MS / 1000} s` };
    const line = (result.stdout.split('\n')[0] ?? '').trim().slice(0, 200);
    if (result.exitCode !== 0 || line === '') {
      const said = `${result.stdout}${result.stderr}`.trim().split('\n')[0]?.slice(0, 200) ?? '';
      return { kind: 'failed', why: `${binary} -v exited ${result.exitCode ?? result.signal ?? '?'}${said === '' ? '' : `: ${said}`}` };
    }
    return { kind: 'said', line };
  } catch (error) {
    if (error instanceof FpmMultiError) return { kind: 'failed', why: error.message };
    throw error;
  }
}

async function isMissingDirectory(system: System, dir: string): Promise<boolean> {
  try {
    await system.stat(dir);
    return false;
  } catch (error) {
    return errnoCode(error) === 'ENOENT';
  }
}

/** What the config holds as php-fpm reads it (pools, the pid line) and the socket directories it lacks. */
async function readFound(system: System, config: string): Promise<Pick<DiscoveredInstance, 'pools' | 'configProblem' | 'pidLine' | 'missingSocketDirs'>> {
  const { readFpmConfig } = await import('../php-fpm/config/load.js');
  try {
    // The environment php-fpm gets from the controller without env= keys (src/model/invocation.ts).
    const parsed = await readFpmConfig(system, config, { env: { PATH: DEFAULT_PATH }, forceDaemonize: true });
    const pools: DiscoveredPool[] = parsed.pools.map((pool) => ({
      name: pool.name, listen: pool.listen, statusListen: pool.statusListen, at: pool.listenAt === null ? null : `${pool.listenAt.file}:${pool.listenAt.line}`,
    }));
    const { pid, pidAt } = parsed.global;
    const dirs = [...new Set(parsed.pools.flatMap((pool) => [pool.listen, pool.statusListen]).filter((l): l is string => l?.startsWith('/') === true).map((l) => path.dirname(l)))];
    const missingSocketDirs: string[] = [];
    for (const dir of dirs) if (await isMissingDirectory(system, dir)) missingSocketDirs.push(dir);
    return {
      pools, configProblem: null, missingSocketDirs,
      pidLine: pidAt === null || pid === null ? null : { file: pidAt.file, line: pidAt.line, pid },
    };
  } catch (error) {
    if (error instanceof FpmMultiError) return { pools: [], configProblem: error.message, pidLine: null, missingSocketDirs: [] };
    throw error;
  }
}

/** The form asked for, else the one OpenRC's /bin/sh reads: arrays only where it is bash. */
async function chooseForm(system: System, eprefix: string, asked: DeclarationForm | undefined): Promise<{ form: DeclarationForm; reason: string }> {
  if (asked !== undefined) return { form: asked, reason: `The ${asked} form, as asked (--form ${asked}).` };
  const shell = await findSystemShell(system, eprefix);
  if (isBash(shell)) return { form: 'array', reason: `/bin/sh is ${shell}: the array form (OpenRC sources this file with /bin/sh; --form string for any sh).` };
  const which = shell === null ? '/bin/sh cannot be resolved' : `/bin/sh is ${shell}, not bash`;
  return { form: 'string', reason: `${which}: the POSIX string form (OpenRC sources this file with /bin/sh, which cannot read bash arrays).` };
}

export async function discover(context: CommandContext): Promise<number> {
  const { io } = context;
  const { system } = io;
  const eprefix = io.env['EPREFIX'] ?? '';
  const probe = probeFilesOf(system);
  const { form, reason } = await chooseForm(system, eprefix, context.form);
  const notes: string[] = [];
  const usable: Array<{ candidate: DiscoveryCandidate; binary: string }> = [];
  for (const candidate of listDiscoveryCandidates(eprefix, probe.listDirectory)) {
    if (!probe.isFile(candidate.config)) continue; // the directory of another SAPI (cli, apache2) or of php.ini alone
    const binary = candidate.binaries.find((file) => probe.isExecutable(file));
    if (binary === undefined) {
      notes.push(`${candidate.config} (${candidate.label}) has no php-fpm: none of ${candidate.binaries.join(', ')} is an executable file (the package was removed, its config kept?)`);
      continue;
    }
    usable.push({ candidate, binary });
  }
  const names = nameInstances(usable.map(({ candidate }) => candidate));
  const instances: DiscoveredInstance[] = [];
  for (const [index, { candidate, binary }] of usable.entries()) {
    const [version, found] = await Promise.all([askVersion(system, binary), readFound(system, candidate.config)]);
    instances.push({
      name: names[index]!, candidate, binary, version, ...found,
      words: [chooseBinaryWord(candidate, binary, eprefix, probe.isExecutable), `config=${candidate.config}`],
    });
  }
  const declared = new Set(instances.map((instance) => instance.binary));
  for (const slot of listInstalledSlots({ eprefix, pathDirs: [] }, probe)) {
    if (!declared.has(slot.binary)) notes.push(`${slot.slot} (${slot.binary}) is installed, but its distribution's default config was not found; declare it with config= naming its php-fpm.conf`);
  }
  io.stdout(formatDiscovery({ instances, notes, form, formReason: reason }));
  if (instances.length === 0) {
    reportError(io, 'no php-fpm with its default config found (Debian /etc/php/<v>/fpm, Gentoo /etc/php/fpm-php<v>, Alpine /etc/php<vv>, Remi /etc/opt/remi/php<vv>): nothing declared');
    return EXIT_FAILURE;
  }
  const fixes = instances.filter((instance) => instance.pidLine !== null).length;
  if (fixes > 0) reportWarning(io, `the output has "fix:" lines for ${fixes} of ${countOf(instances.length, 'declared instance')}: run them, then php-fpm-multi check`);
  return EXIT_OK;
}
