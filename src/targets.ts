// Everything a process-control command needs before it touches a process: the model, the
// records of what was started, each instance's php-fpm config (listen addresses, pid, error log),
// and the refusal of a run whose instances would collide.
import type { CommandContext } from './command.js';
import { NotConfiguredError } from './errors.js';
import type { FpmPool } from './fpm-config.js';
import type { Target } from './inspect.js';
import { loadModel } from './load.js';
import type { Model } from './model.js';
import { isUsable, runPreflight, type Preflight } from './preflight.js';
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
  /** Whole-run refusals found by the preflight (shared files, listen collisions); [] without it. */
  collisions: string[];
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
  /** With readFpmConfigs: only read them, without what refuses a start (health, status --pools). */
  factsOnly?: boolean;
}

export async function prepareTargets(system: System, context: CommandContext, options: PrepareOptions): Promise<Prepared> {
  const { io, conf, selection } = context;
  const model = loadModel(conf, io.env, io.uid);
  const runDir = requireUsableFile(model);
  const selected = selectInstances(model.instances, selection);
  const { records, problems: recordProblems } = await readRecords(system, runDir);
  let preflight: Preflight | null = null;
  if (options.readFpmConfigs) {
    // Loaded only here: status and stop never read php-fpm configs and need not parse this module.
    const { loadFpmConfig } = await import('./fpm-config.js');
    preflight = await runPreflight(system, model, selected, { loadFpmConfig, path: io.env['PATH'], factsOnly: options.factsOnly === true });
  }
  const targets: PreparedTarget[] = selected.map((instance) => {
    const record = recordFor(records, instance.name);
    if (!isUsable(instance)) {
      const unusable = instance.problems.join('; ') || 'its php-fpm binary, config or pidfile is unknown';
      return { name: instance.name, declared: true, instance: null, record, pidfile: instance.pidfile, unusable, errorLog: null, pools: [] };
    }
    const checked = preflight?.instances.get(instance.name);
    if (checked !== undefined && checked.problems.length > 0) {
      // Refused before anything is touched: not started, and a restart leaves the running one as it is.
      return { name: instance.name, declared: true, instance: null, record, pidfile: instance.pidfile, unusable: checked.problems.join('; '), errorLog: null, pools: [] };
    }
    const facts = checked?.facts ?? { pools: [], errorLog: null };
    return { name: instance.name, declared: true, instance, record, pidfile: instance.pidfile, unusable: null, errorLog: facts.errorLog, pools: facts.pools };
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
  return { model, runDir, targets, recordProblems, collisions: preflight?.collisions ?? [] };
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

// Moved to src/preflight.ts, which `check` shares: start and check can never disagree.
export { refuseCollisions } from './preflight.js';
