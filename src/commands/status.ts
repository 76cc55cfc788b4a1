// status: the state of every instance, from pidfiles, records and /proc; never signals.
// status --pools: the figures of every pool, from its status page over FastCGI.
import type { CommandContext } from '../cli/command.js';
import { EXIT_CRASHED, EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_OK, EXIT_UNKNOWN } from '../exit-codes.js';
import { inspectTarget, type Inspection, type InstanceState } from '../process/inspect.js';
import { processAgeMs, readBootTimeSeconds } from '../process/proc.js';
import { readStartFailure } from '../process/record.js';
import { formatTable } from '../cli/table.js';
import { runAtPace } from '../process/parallel.js';
import { isCountedAsDeclared, isInRunDirectory, pidfileOf, type Target } from '../process/target.js';
import { isUsable } from '../process/preflight.js';
import type { Instance } from '../model/instance.js';
import { describeUnusableFile } from '../process/declaration.js';
import { describeNothingRecorded, describePreviousRunDir } from '../process/previous-run-dir.js';
import { prepareTargets } from '../process/targets.js';
import { reportError, reportWarning, writeText } from '../cli/reporter.js';
import type { ControlContext } from '../process/control.js';
import { ProcessTable } from '../process/terminate.js';
import { describeSupervision, readLiveSupervisor, supervisedState } from '../supervisor/state.js';

interface Row {
  target: Target;
  inspection: Inspection;
  slot: string | null;
  config: string | null;
  enabled: boolean;
  /** Declared with enabled=no (an orphan is not declared: not disabled, not enabled). */
  disabled: boolean;
}

/**
 * The disabled instances no target stands for (not started by name, so without a record): status
 * lists them too, marked disabled, so that the admin sees every declared instance. Looked at as
 * any declared one (a master of its config that runs is named); never counted in the exit code.
 */
function chooseDisabledTargets(instances: readonly Instance[], targets: readonly Target[], runDir: string): Target[] {
  return instances
    .filter((instance) => !instance.enabled && !targets.some((target) => target.name === instance.name))
    .map((instance): Target => {
      const pidfileProves = isInRunDirectory(instance.pidfile, runDir);
      if (!isUsable(instance)) {
        const reason = instance.problems.join('; ') || 'its php-fpm binary, config or pidfile is unknown';
        return { kind: 'unusable', name: instance.name, pidfile: instance.pidfile, reason, record: null, pidfileProves };
      }
      return { kind: 'declared', name: instance.name, instance, record: null, intent: null, recordProblem: null, pidfileProves, errorLog: null, pools: [] };
    });
}

/** The STATE column: a disabled instance is marked (`disabled` alone when it is stopped). */
export function describeState(state: string, enabled: boolean): string {
  if (enabled) return state;
  return state === 'stopped' ? 'disabled' : `${state},disabled`;
}

export interface StateOfInstance {
  declared: boolean;
  enabled: boolean;
  state: InstanceState;
}

/**
 * OpenRC's and LSB's status codes, worst first; a running orphan alone is 1 (running, not as
 * declared). Disabled instances never count: the service is what the file enables.
 */
export function chooseExitCode(instances: readonly StateOfInstance[]): number {
  const counted = instances.filter((instance) => instance.declared && instance.enabled);
  const states = new Set<InstanceState>(counted.map((instance) => instance.state));
  if (states.has('crashed') || states.has('stale')) return EXIT_CRASHED;
  if (states.has('unknown')) return EXIT_UNKNOWN;
  const running = counted.filter((instance) => instance.state === 'running').length;
  // An orphan (recorded by this file, no longer declared) that runs is something of this file
  // running, though not as declared: LSB's "not running" (3) would tell a monitor nothing runs.
  if (running === 0) return instances.some((instance) => instance.state === 'orphan') ? EXIT_FAILURE : EXIT_NOT_RUNNING;
  return running === counted.length ? EXIT_OK : EXIT_FAILURE;
}

function formatUptime(seconds: number): string {
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]];
  const parts: string[] = [];
  let rest = Math.floor(seconds);
  for (const [unit, size] of units) {
    if (rest >= size || (unit === 's' && parts.length === 0)) parts.push(`${Math.floor(rest / size)}${unit}`);
    rest %= size;
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

export async function status(context: CommandContext): Promise<number> {
  const { io } = context;
  const system = io.system;
  const prepared = await prepareTargets(system, context, 'everything-recorded', 'records');
  if (prepared.declared.unusable !== null) reportWarning(io, describeUnusableFile(prepared.declared));
  const previous = prepared.previous ?? null;
  if (previous !== null && previous.targets.length > 0) reportWarning(io, describePreviousRunDir(previous, previous.targets.map((target) => target.name)));
  if (prepared.declared.unusable !== null && prepared.targets.length === 0 && (previous?.targets.length ?? 0) === 0 && prepared.used !== true) {
    // Nothing recorded anywhere this file's commands write: "no instance running" would be a guess.
    for (const problem of prepared.recordProblems) reportWarning(io, problem);
    reportError(io, describeNothingRecorded(prepared.declared, previous));
    return EXIT_UNKNOWN;
  }
  const instances = prepared.declared.unusable === null ? (prepared.declared.model?.instances ?? []) : [];
  const processes = new ProcessTable(system);
  const records = prepared.targets.flatMap((target) => (target.kind === 'launched' || target.record === null ? [] : [target.record]));
  const control: ControlContext = { system, runDir: prepared.runDir, path: io.env['PATH'], conf: context.conf, records, processes };
  const previousControl: ControlContext | null = previous === null ? null : { ...control, runDir: previous.runDir };
  // Without names: every declared instance, the disabled ones too.
  const disabled = context.selection.length === 0 ? chooseDisabledTargets(instances, prepared.targets, prepared.runDir) : [];
  const located = [
    ...[...prepared.targets, ...disabled].map((target) => ({ target, control })),
    ...(previous === null || previousControl === null ? [] : previous.targets.map((target) => ({ target, control: previousControl }))),
  ];
  const rows: Row[] = await runAtPace(located, 'waits', async ({ target, control }) => {
      const declared = isCountedAsDeclared(target) ? instances.find((instance) => instance.name === target.name) : undefined;
      const inspection = await inspectTarget(system, target);
      if (inspection.state === 'stopped' && target.kind === 'declared' && target.record === null) {
        // A master of its config that this file cannot prove it started: named, never claimed.
        // Loaded only then: status of what runs does not pay for src/process/occupants.ts.
        const { describeUnownedMaster } = await import('../process/occupants.js');
        const unowned = await describeUnownedMaster(control, target, inspection);
        if (unowned !== null) inspection.detail = inspection.detail === '' ? unowned : `${inspection.detail}; ${unowned}`;
      }
      if (inspection.state !== 'running') {
        const failure = await readStartFailure(system, control.runDir, target.name);
        if (failure !== null) {
          const reason = `last start failed at ${new Date(failure.atMs).toISOString()}: ${failure.message.split('\n').map((line) => line.trim()).join(' ')}`;
          inspection.detail = inspection.detail === '' ? reason : `${inspection.detail}; ${reason}`;
        }
      }
      return { target, inspection, slot: declared?.slot ?? null, config: declared?.config ?? (target.kind === 'launched' ? target.intent.config : target.record?.config) ?? null, enabled: declared?.enabled ?? prepared.declared.unusable !== null, disabled: declared?.enabled === false };
  });
  // A dead record of an instance no longer declared is history, not state.
  const shown = rows.filter((row) => isCountedAsDeclared(row.target) || row.inspection.state === 'orphan');
  // A supervisor counts only when its pid runs with the recorded start time (not just a file).
  const supervisor = await readLiveSupervisor(system, prepared.runDir);
  const shownState = (row: Row): string => supervisedState(supervisor, row.target.name, row.inspection.state);
  for (const row of shown) {
    const note = describeSupervision(supervisor, row.target.name);
    if (note !== null) row.inspection.detail = row.inspection.detail === '' ? note : `${row.inspection.detail}; ${note}`;
  }
  const bootTimeSeconds = shown.some((row) => row.inspection.master !== null) ? await readBootTimeSeconds(system) : 0;
  const uptimeOf = (row: Row): number | null =>
    row.inspection.master === null ? null : Math.floor(processAgeMs(row.inspection.master.startTimeTicks, bootTimeSeconds, system.now()) / 1000);
  if (context.json) {
    // Only --json reads php-fpm configs (for each instance's log): the table stays as fast as before.
    const { locateInstanceLog } = await import('../process/log-location.js');
    const { toLogJson } = await import('../php-fpm/log.js');
    const declaredInstances = instances;
    const logs: object[] = await Promise.all(shown.map(async (row) => {
      const declared = isCountedAsDeclared(row.target) ? declaredInstances.find((instance) => instance.name === row.target.name) : undefined;
      return toLogJson(declared === undefined
        ? { kind: 'unknown', why: prepared.declared.unusable === null ? 'no longer declared: its php-fpm config is not known' : `the declaration file is unusable (${prepared.declared.unusable})` }
        : await locateInstanceLog(system, declared, io.env['PATH']));
    }));
    const rowsJson = shown.map((row, index) => ({
      name: row.target.name, slot: row.slot, state: shownState(row), enabled: isCountedAsDeclared(row.target) ? !row.disabled : null, pid: row.inspection.pid, uptime_s: uptimeOf(row),
      config: row.config, pidfile: pidfileOf(row.target), log: logs[index], supervised: supervisor?.instances[row.target.name] ?? null,
    }));
    const supervision = supervisor === null ? null : { pid: supervisor.pid, started_at: supervisor.started_at };
    writeText(io, `${JSON.stringify({ instances: rowsJson, supervisor: supervision }, null, 2)}\n`);
  } else {
    const table = shown.map((row) => {
      const uptime = uptimeOf(row);
      return [row.target.name, row.slot ?? '-', describeState(shownState(row), !row.disabled), row.inspection.pid === null ? '-' : String(row.inspection.pid), uptime === null ? '-' : formatUptime(uptime), row.config ?? '-'];
    });
    writeText(io, formatTable(['INSTANCE', 'SLOT', 'STATE', 'PID', 'UPTIME', 'CONFIG'], table));
    for (const row of shown) {
      if (row.inspection.detail !== '') writeText(io, `  ${row.target.name}: ${row.inspection.detail}\n`);
    }
    if (supervisor !== null) writeText(io, `supervisor: running (pid ${supervisor.pid}, since ${supervisor.started_at})\n`);
  }
  for (const problem of prepared.recordProblems) reportWarning(io, problem);
  // `failed` (the supervisor gave up) should run and does not: counted as crashed (32).
  // A disabled instance counts only when named: `status b` answers for b.
  const named = context.selection.length > 0;
  return chooseExitCode(shown.map((row) => ({
    declared: isCountedAsDeclared(row.target), enabled: row.enabled || named, state: shownState(row) === 'failed' ? 'crashed' : row.inspection.state,
  })));
}
