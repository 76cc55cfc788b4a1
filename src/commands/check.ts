// check: everything start would refuse, found without changing anything (the shared preflight,
// src/process/preflight.ts), plus the bash-array trap of a conf.d file under a /bin/sh that is
// not bash. Exit 0 when every selected enabled instance is usable, else 6 with each problem.
import { posix as path } from 'node:path';
import type { CommandContext } from '../cli/command.js';
import { EXIT_NOT_CONFIGURED, EXIT_OK } from '../exit-codes.js';
import { chooseRunDirUid, loadModel } from '../model/load.js';
import type { Instance, Model } from '../model/instance.js';
import type { InstancePreflight } from '../process/checks.js';
import { isUsable, runPreflight, type Preflight } from '../process/preflight.js';
import { errnoCode, type System } from '../process/system.js';
import { FpmMultiError } from '../errors.js';
import { testConfig, type ControlContext } from '../process/control.js';
import { runAtPace } from '../process/parallel.js';
import type { UsableInstance } from '../model/invocation.js';
import { createCommandListenerProbe, describeHeldAddresses, describeUnownedMaster } from '../process/occupants.js';
import { inspectTarget, type Inspection } from '../process/inspect.js';
import { checkRunDirectory } from '../process/pidfile.js';
import { readRecords } from '../process/record.js';
import { isInRunDirectory, type DeclaredTarget } from '../process/target.js';
import { type RecordsRead, resolveDeclarationFile } from '../process/declaration.js';
import { ProcessTable } from '../process/terminate.js';
import { describeLockProblem } from '../process/lock.js';
import { describeFix, probeWritable } from '../process/write-probe.js';
import { selectInstances } from '../model/selection.js';
import { formatStringForm } from '../declaration/string-form.js';
import { countOf, reportLine } from '../cli/reporter.js';
import { findSystemShell, isBash } from '../process/system-shell.js';

/** OpenRC sources the files of its conf.d directory with /bin/sh before the runscript runs. */
function isSourcedByOpenRc(conf: string, eprefix: string): boolean {
  return path.dirname(path.resolve(conf)) === `${eprefix}/etc/conf.d`;
}

/**
 * Arrays are bash-only. For a file OpenRC sources, a /bin/sh other than bash stops the service
 * with a syntax error before the controller runs: an error. Elsewhere, a warning.
 */
function describeArrays(model: Model, shell: string | null, fatal: boolean): string[] {
  if (model.arrayVariables.length === 0 || shell === null || isBash(shell)) return [];
  const lines = [
    `${fatal ? 'error' : 'warning'}: ${model.conf} uses bash arrays, but /bin/sh is ${shell}: OpenRC sources ${fatal ? 'this file' : 'conf.d files'} with /bin/sh, which stops with a syntax error ("(" unexpected) before php-fpm-multi runs.`,
    `  Rewrite these variables in the string form (the same words, which every sh can read):`,
  ];
  for (const variable of model.arrayVariables) {
    if (variable.value.kind === 'array') lines.push(`    ${formatStringForm(variable.name, variable.value.elements)}`);
  }
  return lines;
}

/** An instance's own problems, without those its group's conflict line already reports. */
function ownProblems(model: Model, instance: Instance, found: InstancePreflight | undefined, live: ReadonlyMap<string, string[]>): string[] {
  return [...instance.problems.filter((problem) => !model.sharingProblems.has(problem)), ...(found?.problems ?? []), ...(live.get(instance.name) ?? [])];
}

/**
 * What start refuses because of what runs now, found as start finds it once it holds the lock
 * (read-only: records are read when the run directory is trusted): a master of an instance's
 * config that this file cannot prove it started, and a listen address that another process than
 * the instance's own master already listens on.
 */
async function findLiveProblems(
  system: System, model: Model, preflight: Preflight, conf: string, pathVariable: string | undefined,
): Promise<{ problems: Map<string, string[]>; foreign: string[] }> {
  const problems = new Map<string, string[]>();
  const { runDir } = model;
  if (runDir === null || preflight.runDirProblem !== null) return { problems, foreign: [] };
  let read: RecordsRead = { records: [], problems: [] };
  try {
    if (await checkRunDirectory(system, runDir)) read = await readRecords(system, runDir, await resolveDeclarationFile(system, conf));
  } catch (error) {
    // Unreadable for this user (root's, 0700): what runs cannot be told apart; start says "needs root".
    if (!(error instanceof FpmMultiError) && errnoCode(error) === undefined) throw error;
  }
  const control: ControlContext = { system, runDir, path: pathVariable, conf, records: read.records, processes: new ProcessTable(system) };
  const listeners = createCommandListenerProbe(control);
  for (const instance of model.instances) {
    const checked = preflight.instances.get(instance.name);
    if (checked === undefined || !isUsable(instance)) continue;
    const target: DeclaredTarget = {
      kind: 'declared', name: instance.name, instance, record: read.records.find((record) => record.name === instance.name) ?? null,
      intent: read.intents?.find((intent) => intent.name === instance.name) ?? null,
      recordProblem: read.unreadable?.get(instance.name) ?? null, pidfileProves: isInRunDirectory(instance.pidfile, runDir),
      errorLog: checked.facts.errorLog, pools: checked.facts.pools,
    };
    let inspection: Inspection;
    try {
      inspection = await inspectTarget(system, target);
    } catch (error) {
      // A pidfile the system refuses to show (EACCES): the preflight names it already.
      if (!(error instanceof FpmMultiError) && errnoCode(error) === undefined) throw error;
      continue;
    }
    const running = inspection.state === 'running' || inspection.state === 'orphan';
    const found = [
      ...[running ? null : await describeUnownedMaster(control, target, inspection)].filter((problem): problem is string => problem !== null),
      // An address another process than its own master holds: start would refuse, a restart too.
      ...(await describeHeldAddresses(control, checked.facts.pools, running ? inspection.pid : null, listeners)),
    ];
    if (found.length > 0) problems.set(instance.name, found);
  }
  // Records of another declaration file here: two files share this run directory (tryout 2 finding 1).
  return { problems, foreign: [...(read.foreign?.values() ?? [])] };
}

/**
 * A run directory that exists but where nothing can be written (read-only, full): start would
 * refuse every instance, failing to write its launch intent. A warning, not a problem: stop and
 * status still work there, and the state may be passing (tryout 2, finding 10f). The probe file
 * is written and removed (src/process/write-probe.ts); a missing directory is start's to create.
 */
async function describeUnwritableRunDir(system: System, runDir: string | null, runDirProblem: string | null): Promise<string | null> {
  if (runDir === null || runDirProblem !== null) return null;
  try {
    if ((await system.stat(runDir)).kind !== 'directory') return null;
  } catch {
    return null;
  }
  const failure = await probeWritable(system, runDir);
  // As an ordinary user a root run directory refuses anyway: start says it needs root.
  if (failure === null || failure.code === 'ENOENT' || (failure.code === 'EACCES' && system.uid !== 0)) return null;
  return `the run directory ${runDir} cannot be written (${failure.words}), so start would fail to write its launch intent and records there and start nothing (stop and status still work): ${describeFix(failure.code, runDir)}`;
}

/**
 * php-fpm's own configuration test (-t) of each enabled instance without another problem: start
 * no longer runs it before a launch (php-fpm's start-up is the same test), so check runs it, and
 * finds what only php-fpm knows (an unknown directive, a pool without user, an unknown pool user)
 * before a start fails on it. Only where the caller runs the instances (root, or an ordinary
 * user's own file): as another user, php-fpm cannot open root's error_log and would fail anyway.
 */
async function testConfigs(
  system: System, model: Model, selected: readonly Instance[], preflight: Preflight, live: ReadonlyMap<string, string[]>, conf: string, pathVariable: string | undefined,
): Promise<Array<[Instance, string]>> {
  if (chooseRunDirUid(system, conf) !== system.uid) return [];
  const testable = selected.filter((i): i is UsableInstance => i.enabled && isUsable(i) && ownProblems(model, i, preflight.instances.get(i.name), live).length === 0);
  const outcomes = await runAtPace(testable, 'works', (instance) => testConfig({ system, path: pathVariable }, instance));
  return outcomes.flatMap((outcome, index) => (outcome.ok ? [] : [[testable[index]!, outcome.message] as [Instance, string]]));
}

/**
 * Exit 0 when every selected enabled instance is usable, else print each problem and exit 6.
 * Whatever start would refuse is a problem here: the same preflight decides both (read-only).
 */
export async function check({ io, conf, selection }: CommandContext): Promise<number> {
  // The run directory (so the default pidfiles) exactly as status and start choose it.
  const model = loadModel(io.system, conf, io.env, chooseRunDirUid(io.system, conf));
  const selected = selection.length === 0 ? model.instances : selectInstances(model.instances, selection);
  const { readFpmConfig } = await import('../php-fpm/config/load.js');
  const preflight = await runPreflight(io.system, model, selected, { readFpmConfig, path: io.env['PATH'] });
  // A lock start and stop would refuse (a FIFO planted there): the run directory is unusable.
  const lockProblem = model.runDir === null || preflight.runDirProblem !== null ? null : await describeLockProblem(io.system, model.runDir);
  const { problems: live, foreign } = await findLiveProblems(io.system, model, preflight, conf, io.env['PATH']);
  const describe = (i: Instance): string => `${i.variable} (line ${i.line})`;
  const configTests = await testConfigs(io.system, model, selected, preflight, live, conf, io.env['PATH']);
  const failures = [
    ...model.problems,
    ...(preflight.runDirProblem === null ? [] : [preflight.runDirProblem]),
    ...(lockProblem === null ? [] : [lockProblem]),
    ...foreign,
    ...preflight.collisions,
    ...selected.filter((i) => i.enabled).flatMap((i) => ownProblems(model, i, preflight.instances.get(i.name), live).map((p) => `${describe(i)}: ${p}`)),
    ...configTests.map(([i, message]) => `${describe(i)}: ${message}`),
  ];
  const warnings = selected
    .filter((i) => i.enabled)
    .flatMap((i) => (preflight.instances.get(i.name)?.warnings ?? []).map((w) => `warning: ${describe(i)}: ${w}`));
  const creations = selected
    .filter((i) => i.enabled)
    .flatMap((i) => (preflight.instances.get(i.name)?.notes ?? []).map((n) => `note: ${describe(i)}: ${n}`));
  const disabledNotes = selected
    .filter((i) => !i.enabled)
    .flatMap((i) => ownProblems(model, i, preflight.instances.get(i.name), live).map((p) => `note: ${i.variable} (line ${i.line}, disabled): ${p}`));
  const eprefix = io.env['EPREFIX'] ?? '';
  const fatalArrays = isSourcedByOpenRc(conf, eprefix);
  const arrays = describeArrays(model, await findSystemShell(io.system, eprefix), fatalArrays);
  // The array lines and their string-form rewrites are one message (one starred line in the openrc style).
  if (arrays.length > 0) reportLine(io, fatalArrays ? 'error' : 'warning', arrays.join('\n'));
  if (fatalArrays && arrays.length > 0) failures.push(`bash arrays cannot be sourced by /bin/sh: use the string form printed above`);
  for (const note of disabledNotes) reportLine(io, 'warning', `${conf}: ${note}`);
  for (const note of creations) reportLine(io, 'info', `${conf}: ${note}`);
  for (const warning of warnings) reportLine(io, 'warning', `${conf}: ${warning}`);
  const unwritable = await describeUnwritableRunDir(io.system, model.runDir, preflight.runDirProblem);
  if (unwritable !== null) reportLine(io, 'warning', `${conf}: warning: ${unwritable}`);
  if (failures.length > 0) {
    for (const failure of failures) reportLine(io, 'error', `${conf}: ${failure}`);
    reportLine(io, 'error', `${conf}: ${countOf(failures.length, 'problem')}; fix them and run php-fpm-multi check again`);
    return EXIT_NOT_CONFIGURED;
  }
  const enabled = selected.filter((i) => i.enabled).length;
  reportLine(io, 'info', `${conf}: ${countOf(enabled, 'enabled instance')} usable`);
  return EXIT_OK;
}
