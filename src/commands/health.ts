// health: is everything serving? Every selected enabled instance must run, and every pool with a
// ping.path must answer it within POOL_PROBE_TIMEOUT_MS (a pool without one: its status page,
// when it has one). Silent and exit 0 when healthy, so cron mails nothing; one line per failure
// and exit 1 otherwise. `--format prometheus` prints the pool figures for node_exporter instead.
import type { CommandContext } from '../cli/command.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_UNKNOWN } from '../exit-codes.js';
import { NEEDS_ROOT_DETAIL } from '../process/inspect.js';
import { describeHealthFailures, POOL_PROBE_TIMEOUT_MS, surveyTargets, type InstanceSurvey } from '../php-fpm/pools.js';
import { buildPoolMetrics, formatExposition } from '../php-fpm/prometheus.js';
import { requireInstances } from '../process/choice.js';
import { prepareTargets } from '../process/targets.js';
import { formatLine, reportError, reportWarning } from '../cli/reporter.js';

interface HealthReport {
  surveys: InstanceSurvey[];
  /** One line per instance not running or pool not answering. */
  failures: string[];
  /** An ordinary user could not see root's instances: exit 4, never "not running". */
  blind: boolean;
}

function isBlind(survey: InstanceSurvey): boolean {
  return survey.state === 'unknown' && survey.detail.endsWith(NEEDS_ROOT_DETAIL);
}

/** A pool's socket this ordinary user may not connect to (root's pools are often 0660 www-data). */
const SOCKET_DENIED = /: permission denied \((EACCES|EPERM)\)/;

function isDeniedPool(survey: InstanceSurvey, uid: number): boolean {
  return uid !== 0 && survey.pools.some((probe) => [probe.ping, probe.status].some((check) => check.kind === 'failed' && SOCKET_DENIED.test(check.message)));
}

/** An instance an ordinary user cannot see is not "not running": it is unknown, said plainly. */
function describeFailures(survey: InstanceSurvey, uid: number): string[] {
  if (isBlind(survey)) return [`${survey.target.name}: state unknown: ${survey.detail}`];
  const failures = describeHealthFailures(survey);
  if (!isDeniedPool(survey, uid)) return failures;
  return failures.map((failure) => (SOCKET_DENIED.test(failure) ? `${failure} The health of this pool cannot be determined without root (run as root, or let this user connect).` : failure));
}

async function surveyHealth(context: CommandContext): Promise<HealthReport> {
  const { io } = context;
  const system = io.system;
  const prepared = await prepareTargets(system, context, 'selected', 'fpm-facts');
  requireInstances(prepared, 'checked');
  for (const problem of prepared.recordProblems) reportWarning(io, problem);
  const surveys = await surveyTargets(system, prepared.targets, { ping: true, status: true, timeoutMs: POOL_PROBE_TIMEOUT_MS });
  const blind = surveys.some((survey) => isBlind(survey) || isDeniedPool(survey, system.uid));
  return { surveys, failures: surveys.flatMap((survey) => describeFailures(survey, system.uid)), blind };
}

function reportFailures(report: (failure: string) => void, { failures, blind }: HealthReport): number {
  for (const failure of failures) report(failure);
  if (blind) return EXIT_UNKNOWN;
  return failures.length === 0 ? EXIT_OK : EXIT_FAILURE;
}

/**
 * `health`: the failures on stdout (what a monitoring check shows), nothing when healthy. In the
 * openrc style (the runscript's `health`) each failure is an error line (eerror, on stderr).
 */
export async function health(context: CommandContext): Promise<number> {
  const { io } = context;
  const report = io.reporting?.style === 'openrc' ? (failure: string) => reportError(io, failure) : (failure: string) => io.stdout(formatLine(failure));
  return reportFailures(report, await surveyHealth(context));
}

/**
 * `health --format prometheus`: the metrics on stdout (for the textfile collector), the failures
 * on stderr; the exit code is health's, so write to a temporary file and rename it either way.
 */
export async function exportHealthMetrics(context: CommandContext): Promise<number> {
  const report = await surveyHealth(context);
  context.io.stdout(formatExposition(buildPoolMetrics(report.surveys)));
  return reportFailures((failure) => reportError(context.io, failure), report);
}
