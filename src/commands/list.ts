// list: the declared instances as the model sees them (table or --json), problems included;
// it reads the declaration file and each instance's php-fpm config (for its log), never processes.
import type { CommandContext } from '../cli/command.js';
import { EXIT_OK } from '../exit-codes.js';
import { chooseRunDirUid, loadDeclaration, loadModel } from '../model/load.js';
import { INSTANCE_VARIABLE_PREFIX } from '../model/instance.js';
import type { Instance } from '../model/instance.js';
import { selectInstances } from '../model/selection.js';
import { formatTable } from '../cli/table.js';
import { countOf } from '../cli/reporter.js';
import { formatLogColumn, toLogJson, type LogLocation } from '../php-fpm/log.js';
import { locateInstanceLog } from '../process/log-location.js';

/** The JSON shape tools rely on: keep it exactly as documented in the README. */
function toJson(instance: Instance, log: LogLocation): object {
  return {
    name: instance.name,
    variable: instance.variable,
    line: instance.line,
    raw: instance.raw,
    slot: instance.slot,
    config: instance.config,
    binary: instance.binary,
    pidfile: instance.pidfile,
    enabled: instance.enabled,
    log: toLogJson(log),
    problems: instance.problems,
  };
}

/** Every declared instance (disabled ones too, unless names are given), problems included; exits 0. */
export async function list({ io, conf, json, names, selection }: CommandContext): Promise<number> {
  if (names === true) return listNames(io, conf);
  // The run directory (so the default pidfiles) exactly as status and start choose it.
  const model = loadModel(io.system, conf, io.env, chooseRunDirUid(io.system, conf));
  const instances = selection.length === 0 ? model.instances : selectInstances(model.instances, selection);
  // Each instance's php-fpm config is read for its error_log (bounded reads, as check reads it).
  const logs = await Promise.all(instances.map((instance) => locateInstanceLog(io.system, instance, io.env['PATH'])));
  if (json) {
    io.stdout(`${JSON.stringify({ conf: model.conf, instances: instances.map((instance, index) => toJson(instance, logs[index]!)) }, null, 2)}\n`);
    return EXIT_OK;
  }
  const rows = instances.map((i, index) => [
    i.name, i.slot ?? '-', i.enabled ? 'yes' : 'no', i.binary ?? '-', i.config ?? '-', i.pidfile ?? '-', formatLogColumn(logs[index]!),
    i.problems.length === 0 ? 'ok' : countOf(i.problems.length, 'problem'),
  ]);
  io.stdout(`${model.conf}: ${countOf(instances.length, 'instance')}\n`);
  if (rows.length > 0) {
    io.stdout(formatTable(['NAME', 'SLOT', 'ENABLED', 'BINARY', 'CONFIG', 'PIDFILE', 'LOG', 'STATE'], rows));
  }
  instances.forEach((instance, index) => {
    for (const problem of instance.problems) io.stdout(`  ${instance.variable}: ${problem}\n`);
    const log = logs[index]!;
    // The instance's own problems say why already; a config that cannot be read is said here.
    if (log.kind === 'unknown' && instance.problems.length === 0) io.stdout(`  ${instance.variable}: log unknown: ${log.why}\n`);
  });
  for (const problem of model.problems) io.stdout(`  ${problem}\n`);
  return EXIT_OK;
}

/**
 * `list --names`: the declared instance names, one a line, in declaration order, for shell
 * completion. It reads the declaration alone (never executed; no slot lookup, no php-fpm config),
 * so that a completion stays cheap; an unusable file is its usual error (exit 6).
 */
function listNames(io: CommandContext['io'], conf: string): number {
  const declaration = loadDeclaration(io.system, conf, io.env);
  const names = declaration.variables
    .filter((variable) => variable.name.startsWith(INSTANCE_VARIABLE_PREFIX))
    .map((variable) => variable.name.slice(INSTANCE_VARIABLE_PREFIX.length))
    .filter((name) => name !== '');
  io.stdout(names.map((name) => `${name}\n`).join(''));
  return EXIT_OK;
}
