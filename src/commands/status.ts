// status: the state of every instance, from pidfiles, records and /proc; never signals.
// status --pools: the figures of every pool, from its status page over FastCGI.
import type { CommandContext } from '../cli/command.js';
import { EXIT_CRASHED, EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_OK, EXIT_UNKNOWN } from '../exit-codes.js';
import { inspectTarget, inspectUnusable, type Inspection, type InstanceState } from '../process/inspect.js';
import { processAgeMs, readBootTimeSeconds } from '../process/proc.js';
import { readStartFailure } from '../process/record.js';
import { createRealSystem } from '../process/system.js';
import { formatTable } from '../cli/table.js';
import { describeUnusableFile, prepareTargets, type PreparedTarget } from '../process/targets.js';
import { describeSupervision, readLiveSupervisor, supervisedState } from '../supervisor/state.js';

interface Row {
  target: PreparedTarget;
  inspection: Inspection;
  slot: string | null;
  config: string | null;
  enabled: boolean;
}

export interface StateOfInstance {
  declared: boolean;
  enabled: boolean;
  state: InstanceState;
}

/** OpenRC's and LSB's status codes, worst first. */
export function chooseExitCode(instances: readonly StateOfInstance[]): number {
  const counted = instances.filter((instance) => instance.declared && (instance.enabled || instance.state === 'running'));
  const states = new Set<InstanceState>(counted.map((instance) => instance.state));
  if (states.has('crashed') || states.has('stale')) return EXIT_CRASHED;
  if (states.has('unknown')) return EXIT_UNKNOWN;
  const running = counted.filter((instance) => instance.state === 'running').length;
  if (running === 0) return EXIT_NOT_RUNNING;
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
  const system = io.system ?? createRealSystem();
  const prepared = await prepareTargets(system, context, { includeRecorded: true, namesRecorded: true, readFpmConfigs: false, tolerateUnusable: true });
  if (prepared.declared.unusable !== null) io.stderr(`php-fpm-multi: ${describeUnusableFile(prepared.declared)}\n`);
  const instances = prepared.declared.unusable === null ? (prepared.declared.model?.instances ?? []) : [];
  const rows: Row[] = await Promise.all(
    prepared.targets.map(async (target) => {
      const declared = instances.find((instance) => instance.name === target.name && target.declared);
      const inspection = target.unusable !== null && target.record === null ? await inspectUnusable(system, target.pidfile, target.unusable) : await inspectTarget(system, target);
      if (inspection.state !== 'running') {
        const failure = await readStartFailure(system, prepared.runDir, target.name);
        if (failure !== null) {
          const reason = `last start failed at ${new Date(failure.atMs).toISOString()}: ${failure.message.split('\n').map((line) => line.trim()).join(' ')}`;
          inspection.detail = inspection.detail === '' ? reason : `${inspection.detail}; ${reason}`;
        }
      }
      return { target, inspection, slot: declared?.slot ?? null, config: declared?.config ?? target.record?.config ?? null, enabled: declared?.enabled ?? prepared.declared.unusable !== null };
    }),
  );
  // A dead record of an instance no longer declared is history, not state.
  const shown = rows.filter((row) => row.target.declared || row.inspection.state === 'orphan');
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
    const instances = shown.map((row) => ({
      name: row.target.name, slot: row.slot, state: shownState(row), pid: row.inspection.pid, uptime_s: uptimeOf(row),
      config: row.config, pidfile: row.target.pidfile, supervised: supervisor?.instances[row.target.name] ?? null,
    }));
    const supervision = supervisor === null ? null : { pid: supervisor.pid, started_at: supervisor.started_at };
    io.stdout(`${JSON.stringify({ instances, supervisor: supervision }, null, 2)}\n`);
  } else {
    const table = shown.map((row) => {
      const uptime = uptimeOf(row);
      return [row.target.name, row.slot ?? '-', shownState(row), row.inspection.pid === null ? '-' : String(row.inspection.pid), uptime === null ? '-' : formatUptime(uptime), row.config ?? '-'];
    });
    io.stdout(formatTable(['INSTANCE', 'SLOT', 'STATE', 'PID', 'UPTIME', 'CONFIG'], table));
    for (const row of shown) {
      if (row.inspection.detail !== '') io.stdout(`  ${row.target.name}: ${row.inspection.detail}\n`);
    }
    if (supervisor !== null) io.stdout(`supervisor: running (pid ${supervisor.pid}, since ${supervisor.started_at})\n`);
  }
  for (const problem of prepared.recordProblems) io.stderr(`php-fpm-multi: warning: ${problem}\n`);
  // `failed` (the supervisor gave up) should run and does not: counted as crashed (32).
  return chooseExitCode(shown.map((row) => ({
    declared: row.target.declared, enabled: row.enabled, state: shownState(row) === 'failed' ? 'crashed' : row.inspection.state,
  })));
}
