// status: the state of every instance, from pidfiles, records and /proc; never signals.
// status --pools: the figures of every pool, from its status page over FastCGI.
import type { CommandContext } from '../command.js';
import { EXIT_CRASHED, EXIT_FAILURE, EXIT_NOT_RUNNING, EXIT_OK, EXIT_UNKNOWN } from '../exit-codes.js';
import { inspectTarget, inspectUnusable, type Inspection, type InstanceState } from '../inspect.js';
import {
  describeStatusHint, POOL_PROBE_TIMEOUT_MS, surveyTargets, type InstanceSurvey, type PoolFigures, type PoolProbe,
} from '../pools.js';
import { processAgeMs, readBootTimeSeconds } from '../proc.js';
import { readStartFailure } from '../record.js';
import { createRealSystem } from '../system.js';
import { formatTable } from '../table.js';
import { prepareTargets, type PreparedTarget } from '../targets.js';

interface Row {
  target: PreparedTarget;
  inspection: Inspection;
  slot: string | null;
  config: string | null;
  enabled: boolean;
}

interface StateOfInstance {
  declared: boolean;
  enabled: boolean;
  state: InstanceState;
}

/** OpenRC's and LSB's status codes, worst first. */
function chooseExitCode(instances: readonly StateOfInstance[]): number {
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
  const prepared = await prepareTargets(system, context, { includeRecorded: true, readFpmConfigs: false });
  const rows: Row[] = await Promise.all(
    prepared.targets.map(async (target) => {
      const declared = prepared.model.instances.find((instance) => instance.name === target.name && target.declared);
      const inspection = target.unusable !== null && target.record === null ? await inspectUnusable(system, target.pidfile, target.unusable) : await inspectTarget(system, target);
      if (inspection.state !== 'running') {
        const failure = await readStartFailure(system, prepared.runDir, target.name);
        if (failure !== null) {
          const reason = `last start failed at ${new Date(failure.atMs).toISOString()}: ${failure.message.split('\n').map((line) => line.trim()).join(' ')}`;
          inspection.detail = inspection.detail === '' ? reason : `${inspection.detail}; ${reason}`;
        }
      }
      return { target, inspection, slot: declared?.slot ?? null, config: declared?.config ?? target.record?.config ?? null, enabled: declared?.enabled ?? false };
    }),
  );
  // A dead record of an instance no longer declared is history, not state.
  const shown = rows.filter((row) => row.target.declared || row.inspection.state === 'orphan');
  const bootTimeSeconds = shown.some((row) => row.inspection.master !== null) ? await readBootTimeSeconds(system) : 0;
  const uptimeOf = (row: Row): number | null =>
    row.inspection.master === null ? null : Math.floor(processAgeMs(row.inspection.master.startTimeTicks, bootTimeSeconds, system.now()) / 1000);
  if (context.json) {
    const instances = shown.map((row) => ({
      name: row.target.name, slot: row.slot, state: row.inspection.state, pid: row.inspection.pid, uptime_s: uptimeOf(row),
      config: row.config, pidfile: row.target.pidfile,
    }));
    io.stdout(`${JSON.stringify({ instances }, null, 2)}\n`);
  } else {
    const table = shown.map((row) => {
      const uptime = uptimeOf(row);
      return [row.target.name, row.slot ?? '-', row.inspection.state, row.inspection.pid === null ? '-' : String(row.inspection.pid), uptime === null ? '-' : formatUptime(uptime), row.config ?? '-'];
    });
    io.stdout(formatTable(['INSTANCE', 'SLOT', 'STATE', 'PID', 'UPTIME', 'CONFIG'], table));
    for (const row of shown) {
      if (row.inspection.detail !== '') io.stdout(`  ${row.target.name}: ${row.inspection.detail}\n`);
    }
  }
  for (const problem of prepared.recordProblems) io.stderr(`php-fpm-multi: warning: ${problem}\n`);
  return chooseExitCode(shown.map((row) => ({ declared: row.target.declared, enabled: row.enabled, state: row.inspection.state })));
}

/** `status --pools`: one row per pool of every selected instance, from each pool's status page. */
export async function showPoolStatus(context: CommandContext): Promise<number> {
  const { io } = context;
  const system = io.system ?? createRealSystem();
  const prepared = await prepareTargets(system, context, { includeRecorded: false, readFpmConfigs: true });
  const surveys = await surveyTargets(system, prepared.targets, { ping: false, status: true, timeoutMs: POOL_PROBE_TIMEOUT_MS });
  if (context.json) io.stdout(`${JSON.stringify({ pools: surveys.flatMap(describePoolsAsJson) }, null, 2)}\n`);
  else io.stdout(formatPoolTable(surveys));
  for (const problem of prepared.recordProblems) io.stderr(`php-fpm-multi: warning: ${problem}\n`);
  const enabled = new Set(prepared.model.instances.filter((instance) => instance.enabled).map((instance) => instance.name));
  return chooseExitCode(surveys.map((survey) => ({ declared: survey.target.declared, enabled: enabled.has(survey.target.name), state: survey.state })));
}

/** Whether the status page answered, and when it did not, why and what to do. */
function describeStatusPage(survey: InstanceSurvey, probe: PoolProbe): { status_page: string; problem: string | null } {
  switch (probe.status.kind) {
    case 'answered':
      return { status_page: 'answered', problem: null };
    case 'failed':
      return { status_page: 'failed', problem: probe.status.message };
    case 'not-configured':
      return { status_page: 'not-configured', problem: describeStatusHint(survey.target.name, probe.pool) };
    case 'not-checked':
      return { status_page: 'not-checked', problem: `instance ${survey.target.name} is ${survey.state}` };
  }
}

function describePoolsAsJson(survey: InstanceSurvey): object[] {
  return survey.pools.map((probe) => {
    const figures = probe.status.kind === 'answered' ? probe.status.value : null;
    return {
      instance: survey.target.name,
      instance_state: survey.state,
      pool: probe.pool.name,
      listen: probe.pool.listen,
      process_manager: figures?.processManager ?? probe.pool.pm,
      status_path: probe.pool.statusPath,
      status_listen: probe.pool.statusListen,
      ...describeStatusPage(survey, probe),
      figures: figures === null ? null : {
        start_time: new Date(figures.startTimeS * 1000).toISOString(),
        uptime_s: figures.uptimeS,
        accepted_connections: figures.acceptedConnections,
        listen_queue: figures.listenQueue,
        max_listen_queue: figures.maxListenQueue,
        listen_queue_length: figures.listenQueueLength,
        idle_processes: figures.idleProcesses,
        active_processes: figures.activeProcesses,
        total_processes: figures.totalProcesses,
        max_active_processes: figures.maxActiveProcesses,
        max_children_reached: figures.maxChildrenReached,
        slow_requests: figures.slowRequests,
      },
    };
  });
}

const POOL_TABLE_HEADER = [
  'INSTANCE', 'POOL', 'LISTEN', 'PM', 'ACTIVE', 'IDLE', 'TOTAL', 'QUEUE', 'MAX-QUEUE', 'ACCEPTED', 'MAX-CHILDREN-REACHED', 'SLOW',
] as const;

/** The table, then one line per pool without figures saying why (and how to get them). */
function formatPoolTable(surveys: readonly InstanceSurvey[]): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const survey of surveys) {
    if (survey.target.unusable !== null) notes.push(`  ${survey.target.name}: its pools are unknown: ${survey.target.unusable}`);
    else if (survey.state !== 'running') notes.push(`  ${survey.target.name}: ${survey.state}${survey.detail === '' ? '' : ` (${survey.detail})`}: its pools were not asked`);
    for (const probe of survey.pools) {
      const figures = probe.status.kind === 'answered' ? probe.status.value : null;
      const count = (read: (f: PoolFigures) => number): string => (figures === null ? '-' : String(read(figures)));
      rows.push([
        survey.target.name, probe.pool.name, probe.pool.listen ?? '-', figures?.processManager ?? probe.pool.pm ?? '-',
        count((f) => f.activeProcesses), count((f) => f.idleProcesses), count((f) => f.totalProcesses),
        count((f) => f.listenQueue), count((f) => f.maxListenQueue), count((f) => f.acceptedConnections),
        count((f) => f.maxChildrenReached), count((f) => f.slowRequests),
      ]);
      if (probe.status.kind === 'failed') notes.push(`  ${survey.target.name}/${probe.pool.name}: ${probe.status.message}`);
      if (probe.status.kind === 'not-configured') notes.push(`  ${survey.target.name}/${probe.pool.name}: ${describeStatusHint(survey.target.name, probe.pool)}`);
    }
  }
  return formatTable(POOL_TABLE_HEADER, rows) + notes.map((note) => `${note}\n`).join('');
}
