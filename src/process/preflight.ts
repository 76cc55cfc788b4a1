// Everything `start` refuses before it touches a process, in one place: `check` (and so the
// runscript's checkconfig, which restart runs before its stop) and start/restart/reload (through
// src/process/declaration.ts) call the same function, so they can never disagree. It only reads: `check`
// must not create the run directory or anything else. This module is the whole run (each instance's
// checks, src/process/checks.ts, and the collisions between instances); the system probes are in
// src/process/probes.ts.
import { posix as path } from 'node:path';
import { NotConfiguredError } from '../errors.js';
import type { UsableInstance } from '../model/invocation.js';
import type { Instance, Model } from '../model/instance.js';
import { checkRunDirectory, UntrustedPathError } from './pidfile.js';
import type { System } from './system.js';
import { checkInstance, type InstancePreflight, type PreflightOptions } from './checks.js';
import { createProbes, type Probes } from './probes.js';
import { resolveAccount } from './account.js';
import { NeedsRootError } from './run-directory.js';

export interface Preflight {
  /** Instances whose php-fpm config was read: every usable enabled one, and the selected ones. */
  instances: Map<string, InstancePreflight>;
  /** Whole-run refusals: shared configs or pidfiles, listen addresses that collide. */
  collisions: string[];
  /** The run directory would be refused (start creates a missing one; check only looks). */
  runDirProblem: string | null;
}

export function isUsable(instance: Instance): instance is UsableInstance {
  return instance.problems.length === 0 && instance.binary !== null && instance.config !== null && instance.pidfile !== null;
}

/** The real path of each unix socket's directory, for listen collisions through symlinks. */
async function resolveSocketPaths(probes: Probes, checked: Map<string, InstancePreflight>): Promise<Map<string, string>> {
  const resolved = new Map<string, string>();
  for (const { facts } of checked.values()) {
    for (const pool of facts.pools) {
      for (const listen of [pool.listen, pool.statusListen]) {
        if (listen === null || !listen.startsWith('/') || resolved.has(listen)) continue;
        resolved.set(listen, path.join(await probes.realDirectory(path.dirname(listen)), path.basename(listen)));
      }
    }
  }
  return resolved;
}

/**
 * What start refuses, found without changing anything: per instance (each usable enabled
 * instance, and the selected ones) its php-fpm config, binary, pidfile and sockets; for the whole
 * run, shared files and colliding listen addresses across every enabled instance.
 */
export async function runPreflight(
  system: System, model: Model, selected: readonly Instance[], options: PreflightOptions,
): Promise<Preflight> {
  const instances = new Map<string, InstancePreflight>();
  let runDirProblem: string | null = null;
  if (model.runDir !== null && options.factsOnly !== true) {
    try {
      await checkRunDirectory(system, model.runDir);
    } catch (error) {
      if (!(error instanceof UntrustedPathError)) throw error;
      runDirProblem = error.message;
    }
  }
  const probes = createProbes(system, model.runDir ?? '', options.path);
  const selectedSet = new Set(selected);
  if (options.factsOnly !== true) await refuseOtherUsers(system, selected);
  for (const instance of model.instances) {
    if (isUsable(instance) && (instance.enabled || selectedSet.has(instance))) {
      instances.set(instance.name, await checkInstance(probes, options, instance));
    }
  }
  const { findListenConflicts } = await import('../php-fpm/listen.js');
  const resolved = await resolveSocketPaths(probes, instances);
  const enabledPools = model.instances.flatMap((instance) => {
    const checked = instance.enabled ? instances.get(instance.name) : undefined;
    return checked === undefined ? [] : [{ name: instance.name, pools: checked.facts.pools }];
  });
  const listen = findListenConflicts(enabledPools, (address) => resolved.get(address) ?? address);
  return { instances, collisions: [...model.conflicts, ...listen.map((conflict) => conflict.message)], runDirProblem };
}

/**
 * An ordinary controller asked to run php-fpm as another user (user=): only root can, so the
 * command as a whole needs root (exit 4), like any other thing only root may do.
 */
async function refuseOtherUsers(system: System, selected: readonly Instance[]): Promise<void> {
  if (system.uid === 0) return;
  for (const instance of selected) {
    const account = await resolveAccount(system, instance);
    if (account.kind === 'problem' && account.needsRoot) throw new NeedsRootError(`${instance.name}: ${account.problem}`);
  }
}

/**
 * Before any process is touched: two enabled instances must not share a config, a pidfile or a
 * listen address (one of them would fail, or worse, take over the other's socket).
 */
export function refuseCollisions(prepared: { collisions: readonly string[] }, verb = 'started'): void {
  if (prepared.collisions.length > 0) {
    throw new NotConfiguredError(
      `instances would collide, so none was ${verb}:\n  ${prepared.collisions.join('\n  ')}\nGive each instance its own config, pidfile and listen addresses.`,
    );
  }
}
