// The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile collector
// reads), and the pool figures in it. Pure: `health --format prometheus` prints what this builds.
//
// Format rules followed (prometheus.io/docs/instrumenting/exposition_formats):
// - a family is `# HELP name text`, `# TYPE name type`, then its samples, all together, once;
// - HELP text escapes `\` as `\\` and a line feed as `\n`;
// - label values are double-quoted and escape `\` as `\\`, `"` as `\"`, a line feed as `\n`;
// - values are Go floats: integers as digits, NaN, +Inf, -Inf;
// - every line ends with a line feed, the last one too.
// Counters end in `_total`, units are base units (seconds), as promtool's linter asks.

import type { InstanceState } from '../process/inspect.js';
import type { InstanceSurvey, PoolFigures } from './pools.js';

export type MetricType = 'gauge' | 'counter';

export interface MetricSample {
  labels: Readonly<Record<string, string>>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: readonly MetricSample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Names starting with `__` are reserved for Prometheus itself. */
const LABEL_NAME = /^(?!__)[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (char) => (char === '\n' ? '\\n' : `\\${char}`));
}

export function escapeHelp(text: string): string {
  return text.replace(/[\\\n]/g, (char) => (char === '\n' ? '\\n' : '\\\\'));
}

export function formatSampleValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Readonly<Record<string, string>>): string {
  const pairs = Object.entries(labels).map(([name, value]) => {
    if (!LABEL_NAME.test(name)) throw new RangeError(`invalid Prometheus label name ${JSON.stringify(name)}`);
    return `${name}="${escapeLabelValue(value)}"`;
  });
  return pairs.length === 0 ? '' : `{${pairs.join(',')}}`;
}

/** The families in order; a family without samples is left out (nothing to say about it). */
export function formatExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  const seen = new Set<string>();
  for (const family of families) {
    if (!METRIC_NAME.test(family.name)) throw new RangeError(`invalid Prometheus metric name ${JSON.stringify(family.name)}`);
    if (seen.has(family.name)) throw new RangeError(`metric family ${family.name} given twice: its samples must stand together`);
    seen.add(family.name);
    if (family.samples.length === 0) continue;
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) lines.push(`${family.name}${formatLabels(sample.labels)} ${formatSampleValue(sample.value)}`);
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------
// The pool figures.

export const METRIC_PREFIX = 'phpfpm_multi';

interface FigureMetric {
  suffix: string;
  type: MetricType;
  help: string;
  read: (figures: PoolFigures) => number;
}

/** One family per status page figure, in the order php-fpm lists them. */
const FIGURE_METRICS: readonly FigureMetric[] = [
  { suffix: 'pool_start_time_seconds', type: 'gauge', help: 'When the pool started, in seconds since the epoch.', read: (f) => f.startTimeS },
  { suffix: 'pool_accepted_connections_total', type: 'counter', help: 'Requests the pool accepted since it started.', read: (f) => f.acceptedConnections },
  { suffix: 'pool_listen_queue', type: 'gauge', help: 'Requests waiting in the listen backlog for a free worker.', read: (f) => f.listenQueue },
  { suffix: 'pool_max_listen_queue', type: 'gauge', help: 'Most requests ever waiting in the listen backlog since the pool started.', read: (f) => f.maxListenQueue },
  { suffix: 'pool_listen_queue_length', type: 'gauge', help: 'Size of the listen backlog (0 on a unix socket, where php-fpm cannot read it).', read: (f) => f.listenQueueLength },
  { suffix: 'pool_idle_processes', type: 'gauge', help: 'Workers waiting for a request.', read: (f) => f.idleProcesses },
  { suffix: 'pool_active_processes', type: 'gauge', help: 'Workers serving a request (the status request included).', read: (f) => f.activeProcesses },
  { suffix: 'pool_total_processes', type: 'gauge', help: 'Workers, idle and active.', read: (f) => f.totalProcesses },
  { suffix: 'pool_max_active_processes', type: 'gauge', help: 'Most workers ever active at once since the pool started.', read: (f) => f.maxActiveProcesses },
  { suffix: 'pool_max_children_reached_total', type: 'counter', help: 'Times pm.max_children stopped the process manager from starting a worker.', read: (f) => f.maxChildrenReached },
  { suffix: 'pool_slow_requests_total', type: 'counter', help: 'Requests that ran longer than request_slowlog_timeout.', read: (f) => f.slowRequests },
];

const isUp = (state: InstanceState): boolean => state === 'running' || state === 'orphan';

/**
 * - `phpfpm_multi_instance_up{instance}`: 1 when its master runs;
 * - `phpfpm_multi_pool_info{instance,pool,listen,process_manager}`: 1 for every pool declared;
 * - `phpfpm_multi_pool_up{instance,pool}`: 1 when the pool answered its ping (its status page
 *   when it has no ping.path); left out for a pool that has neither;
 * - the status page figures, for every pool whose status page answered.
 */
export function buildPoolMetrics(surveys: readonly InstanceSurvey[]): MetricFamily[] {
  const instanceUp: MetricSample[] = [];
  const poolInfo: MetricSample[] = [];
  const poolUp: MetricSample[] = [];
  const figures = FIGURE_METRICS.map(() => [] as MetricSample[]);
  for (const survey of surveys) {
    const instance = survey.target.name;
    instanceUp.push({ labels: { instance }, value: isUp(survey.state) ? 1 : 0 });
    for (const probe of survey.pools) {
      const labels = { instance, pool: probe.pool.name };
      const status = probe.status.kind === 'answered' ? probe.status.value : null;
      const processManager = status?.processManager ?? probe.pool.pm ?? '';
      poolInfo.push({ labels: { ...labels, listen: probe.pool.listen ?? '', process_manager: processManager }, value: 1 });
      const check = probe.pool.pingPath !== null ? probe.ping : probe.status;
      if (probe.pool.pingPath !== null || probe.pool.statusPath !== null) poolUp.push({ labels, value: check.kind === 'answered' ? 1 : 0 });
      if (status !== null) FIGURE_METRICS.forEach((metric, index) => figures[index]!.push({ labels, value: metric.read(status) }));
    }
  }
  return [
    { name: `${METRIC_PREFIX}_instance_up`, type: 'gauge', help: 'Whether the php-fpm master of the instance runs (1) or not (0).', samples: instanceUp },
    { name: `${METRIC_PREFIX}_pool_info`, type: 'gauge', help: 'Every declared pool, with its listen address and process manager.', samples: poolInfo },
    { name: `${METRIC_PREFIX}_pool_up`, type: 'gauge', help: 'Whether the pool answered its ping (else its status page) in time (1) or not (0).', samples: poolUp },
    ...FIGURE_METRICS.map((metric, index): MetricFamily => ({ name: `${METRIC_PREFIX}_${metric.suffix}`, type: metric.type, help: metric.help, samples: figures[index]! })),
  ];
}
