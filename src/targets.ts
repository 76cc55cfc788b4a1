// Everything a process-control command needs before it touches a process: the model, the
// records of what was started, each instance's php-fpm config (listen addresses, pid, error log),
// and the refusal of a run whose instances would collide.
import type { CommandContext } from './command.js';
import { FpmMultiError, NotConfiguredError } from './errors.js';
import type { FpmPool, loadFpmConfig as LoadFpmConfig } from './fpm-config.js';
import type { Target } from './inspect.js';
import type { UsableInstance } from './invocation.js';
import { loadModel } from './load.js';
import type { Instance, Model } from './model.js';
import { readRecords, type InstanceRecord } from './record.js';
import { selectInstances } from './selection.js';
import type { System } from './system.js';

export interface PreparedTarget extends Target {
  /** The declared pidfile even when the instance is unusable (to tell "stopped" from "unknown"). */
  pidfile: string | null;
  /** Why this declared instance cannot be acted on; null when it can. */
  unusable: string | null;
  /** php-fpm's error log file, for failure messages; null for syslog or unknown. */
  errorLog: string | null;
  pools: FpmPool[];
}

export interface Prepared {
  model: Model;
  runDir: string;
  targets: PreparedTarget[];
  /** Records that could not be read: reported, never trusted. */
  recordProblems: string[];
  /** Pools of every enabled usable instance, selected or not (for listen collisions). */
  enabledPools: { name: string; pools: FpmPool[] }[];
}

function isUsable(instance: Instance): instance is UsableInstance {
  return instance.problems.length === 0 && instance.binary !== null && instance.config !== null && instance.pidfile !== null;
}

/** The file-level problems make the whole file unusable: then no instance is touched. */
function requireUsableFile(model: Model): string {
  const problems = [...model.problems];
  if (problems.length > 0 || model.runDir === null) {
    throw new NotConfiguredError(
      `${model.conf} is unusable, so no instance was touched:\n  ${problems.join('\n  ')}\nFix it and run php-fpm-multi check.`,
    );
  }
  return model.runDir;
}

interface FpmFacts {
  pools: FpmPool[];
  errorLog: string | null;
  problem: string | null;
}

/** Reads the instance's php-fpm config the way php-fpm will (its prefix and environment). */
function readFpmFacts(loadFpmConfig: typeof LoadFpmConfig, instance: UsableInstance): FpmFacts {
  try {
    const config = loadFpmConfig(instance.config, {
      env: instance.env,
      ...(instance.prefix === null ? {} : { prefix: instance.prefix }),
      pidFile: instance.pidfile,
      forceDaemonize: true,
    });
    const errorLog = config.global.errorLog.kind === 'file' ? config.global.errorLog.path : null;
    // php-fpm prefers the config's `pid` over --pid: the controller would wait on the wrong file.
    const pid = config.global.pid;
    const problem = pid !== null && pid !== instance.pidfile
      ? `${instance.config} sets "pid = ${pid}", which php-fpm uses instead of --pid ${instance.pidfile}: remove that line (php-fpm-multi manages pidfiles) or set pidfile=${pid}`
      : null;
    return { pools: config.pools, errorLog, problem };
  } catch (error) {
    if (error instanceof FpmMultiError) return { pools: [], errorLog: null, problem: error.message };
    throw error;
  }
}

function recordFor(records: readonly InstanceRecord[], name: string): InstanceRecord | null {
  return records.find((record) => record.name === name) ?? null;
}

export interface PrepareOptions {
  /**
   * Without instance names, also act on whatever has a record: instances no longer declared
   * (orphans) and disabled ones started by name. `stop` must reach everything that runs.
   */
  includeRecorded: boolean;
  /** Read each instance's php-fpm config (start, restart, reload). */
  readFpmConfigs: boolean;
}

export async function prepareTargets(system: System, context: CommandContext, options: PrepareOptions): Promise<Prepared> {
  const { io, conf, selection } = context;
  const model = loadModel(conf, io.env, io.uid);
  const runDir = requireUsableFile(model);
  const selected = selectInstances(model.instances, selection);
  const { records, problems: recordProblems } = await readRecords(system, runDir);
  const facts = new Map<string, FpmFacts>();
  if (options.readFpmConfigs) {
    // Loaded only here: status and stop never read php-fpm configs and need not parse this module.
    const { loadFpmConfig } = await import('./fpm-config.js');
    for (const instance of model.instances) {
      if (isUsable(instance) && (instance.enabled || selected.includes(instance))) facts.set(instance.name, readFpmFacts(loadFpmConfig, instance));
    }
  }
  const targets: PreparedTarget[] = selected.map((instance) => {
    const record = recordFor(records, instance.name);
    if (!isUsable(instance)) {
      const unusable = instance.problems.join('; ') || 'its php-fpm binary, config or pidfile is unknown';
      return { name: instance.name, declared: true, instance: null, record, pidfile: instance.pidfile, unusable, errorLog: null, pools: [] };
    }
    const fact = facts.get(instance.name) ?? { pools: [], errorLog: null, problem: null };
    return { name: instance.name, declared: true, instance, record, pidfile: instance.pidfile, unusable: fact.problem, errorLog: fact.errorLog, pools: fact.pools };
  });
  if (options.includeRecorded && selection.length === 0) {
    for (const record of records) {
      if (targets.some((target) => target.name === record.name)) continue;
      const disabled = model.instances.find((instance) => instance.name === record.name);
      if (disabled && isUsable(disabled)) {
        targets.push({ name: disabled.name, declared: true, instance: disabled, record, pidfile: disabled.pidfile, unusable: null, errorLog: null, pools: [] });
      } else {
        targets.push({ name: record.name, declared: disabled !== undefined, instance: null, record, pidfile: record.pidfile, unusable: null, errorLog: null, pools: [] });
      }
    }
  }
  const enabledPools = model.instances
    .filter((instance) => instance.enabled && facts.has(instance.name))
    .map((instance) => ({ name: instance.name, pools: facts.get(instance.name)!.pools }));
  return { model, runDir, targets, recordProblems, enabledPools };
}

/**
 * A command that acts on instances refuses a declaration without any: starting or checking
 * nothing must not look like success (a lost declaration would look healthy forever).
 */
export function requireInstances(prepared: Prepared, whatNotDone: string): void {
  if (prepared.targets.length > 0) return;
  throw new NotConfiguredError(
    `${prepared.model.conf} declares no enabled instance, so nothing was ${whatNotDone}; declare one, e.g. FPM_slot_1="slot=php8.2 config=/etc/php/fpm-php8.2/php-fpm.conf"`,
  );
}

/**
 * Before any process is touched: two enabled instances must not share a config, a pidfile or a
 * listen address (one of them would fail, or worse, take over the other's socket).
 */
export async function refuseCollisions(prepared: Prepared): Promise<void> {
  const { findListenConflicts } = await import('./fpm-config.js');
  const listen = findListenConflicts(prepared.enabledPools);
  const collisions = [...prepared.model.conflicts, ...listen.map((conflict) => conflict.message)];
  if (collisions.length > 0) {
    throw new NotConfiguredError(
      `instances would collide, so none was started:\n  ${collisions.join('\n  ')}\nGive each instance its own config, pidfile and listen addresses.`,
    );
  }
}
