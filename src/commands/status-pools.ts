// status --pools: one row per pool of every selected instance, from each pool's status page.
// Its own module, so that plain `status` loads none of the FastCGI and php-fpm config code.
import type { CommandContext } from '../cli/command.js';
import {
  describeStatusHint, POOL_PROBE_TIMEOUT_MS, surveyTargets, type InstanceSurvey, type PoolFigures, type PoolProbe,
} from '../php-fpm/pools.js';
import { formatTable } from '../cli/table.js';
import { isCountedAsDeclared } from '../process/target.js';
import { prepareTargets } from '../process/targets.js';
import { chooseExitCode } from './status.js';
import { reportWarning } from '../cli/reporter.js';

/** `status --pools`: one row per pool of every selected instance, from each pool's status page. */
export async function showPoolStatus(context: CommandContext): Promise<number> {
  const { io } = context;
  const system = io.system;
  const prepared = await prepareTargets(system, context, 'selected', 'fpm-facts');
  const surveys = await surveyTargets(system, prepared.targets, { ping: false, status: true, timeoutMs: POOL_PROBE_TIMEOUT_MS });
  if (context.json) io.stdout(`${JSON.stringify({ pools: surveys.flatMap(describePoolsAsJson) }, null, 2)}\n`);
  else io.stdout(formatPoolTable(surveys));
  for (const problem of prepared.recordProblems) reportWarning(io, problem);
  const enabled = new Set((prepared.declared.model?.instances ?? []).filter((instance) => instance.enabled).map((instance) => instance.name));
  return chooseExitCode(surveys.map((survey) => ({ declared: isCountedAsDeclared(survey.target), enabled: enabled.has(survey.target.name), state: survey.state })));
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
    if (survey.target.kind === 'unusable') notes.push(`  ${survey.target.name}: its pools are unknown: ${survey.target.reason}`);
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
