// What acting on one instance needs and returns: the control context (the system, the run
// directory, the command's process table) and the outcome, with the words of failures shared by
// start, stop and reload (php-fpm's output, write failures, refused files).
import type { UsableInstance } from '../model/invocation.js';
import { buildConfigTest, type RunAs } from '../model/invocation.js';
import { resolveAccount, runAsOf } from './account.js';
import type { ProcessTable } from './terminate.js';
import type { InstanceRecord } from './record.js';
import { ERROR_LOG_TAIL_MAX_BYTES, errnoCode, type RunResult, type System } from './system.js';

/** How much of php-fpm's own output a failure shows. */
const MESSAGE_MAX_LINES = 20;

export interface ControlContext {
  system: System;
  runDir: string;
  /** PATH for php-fpm (the controller's own, or a default). */
  path: string | undefined;
  /** The declaration file, for messages ("not started by <file>"). */
  conf?: string;
  /**
   * The declaration file's real path (resolved once per command), written into every record and
   * launch intent: a record of another file sharing the run directory is never acted on.
   */
  declaration?: string;
  /** Every record of this file in the run directory, to name the record a master runs under (a renamed instance). */
  records?: readonly InstanceRecord[];
  /**
   * The processes as this command first saw them, read on first use and shared by all its
   * instances: finding N instances' workers costs one scan of /proc, not N.
   */
  processes: ProcessTable;
}

export interface Outcome {
  name: string;
  ok: boolean;
  /** What happened, in words: `started (pid 1234)`, or why it failed with php-fpm's message. */
  message: string;
}

export const succeed = (name: string, message: string): Outcome => ({ name, ok: true, message });
export const fail = (name: string, message: string): Outcome => ({ name, ok: false, message });

/** php-fpm's output, trimmed to its last lines, indented under our message. */
export function quoteOutput(text: string): string {
  const lines = text.split('\n').map((line) => line.trimEnd()).filter((line) => line !== '');
  if (lines.length === 0) return '';
  return `\n    ${lines.slice(-MESSAGE_MAX_LINES).join('\n    ')}`;
}

export function describeExit(result: RunResult): string {
  if (result.timedOut) return 'did not finish in time and was killed';
  return result.signal !== null ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
}

/** Where an error log ends now, so that a failure shows only the lines php-fpm added. */
export async function measureLog(system: System, errorLog: string | null): Promise<number> {
  if (errorLog === null) return 0;
  try {
    return (await system.stat(errorLog)).size;
  } catch {
    return 0;
  }
}

export async function readLogSince(system: System, errorLog: string | null, offset: number): Promise<string> {
  if (errorLog === null) return '';
  try {
    return await system.readFile(errorLog, { maxBytes: ERROR_LOG_TAIL_MAX_BYTES, offset });
  } catch {
    return '';
  }
}

/** php-fpm's own configuration test with the instance's flags. */
export async function testConfig(ctx: Pick<ControlContext, 'system' | 'path'>, instance: UsableInstance): Promise<Outcome> {
  // user=: tested as that account, as it will run (php-fpm -t opens error_log, for one).
  const account = await resolveAccount(ctx.system, instance);
  if (account.kind === 'problem') return fail(instance.name, `configuration test failed: ${account.problem}`);
  const runAs = runAsOf(account);
  const test = buildConfigTest(instance, ctx.path, runAs);
  const result = await ctx.system.run(test.program, test.args, { env: test.env, timeoutMs: instance.startTimeoutMs });
  if (result.exitCode === 0) return succeed(instance.name, 'configuration ok');
  const output = result.stderr + result.stdout;
  return fail(instance.name, `configuration test failed: ${instance.binary} --test${runAs === undefined ? '' : ` (as user ${runAs.user})`} ${describeExit(result)}${quoteOutput(output)}${describeUserFix(output, runAs)}`);
}

/** php-fpm's "failed to open error_log (PATH): Permission denied" as a user: the fix, spelled out. */
function describeUserFix(output: string, runAs: RunAs | undefined): string {
  const log = /failed to open error_log \((.*)\): Permission denied/.exec(output)?.[1];
  if (runAs === undefined || log === undefined) return '';
  return `\n  php-fpm runs as user ${runAs.user}, who cannot write its error_log ${log}: set error_log in the config to a file of that user's, or give it the file: touch ${log} && chown ${runAs.user}:${runAs.group} ${log}`;
}

/** Runs a clean-up step whose failure (a full or read-only run directory) must not hide the outcome. */
export async function bestEffort(what: string, step: () => Promise<void>): Promise<string> {
  try {
    await step();
    return '';
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined) throw error;
    return `; could not remove ${what} (${code})`;
  }
}

/** What failed and how to fix it, for a write that failed in the run directory (rethrows a bug). */
export function explainWriteFailure(error: unknown, file: string, dir: string): { what: string; fix: string } {
  const code = errnoCode(error);
  if (code === undefined) throw error;
  const fix = code === 'ENOSPC' || code === 'EDQUOT'
    ? `Free space in ${dir}`
    : code === 'EROFS' ? `${dir} is on a read-only file system: remount it read-write` : `Check that ${dir} is writable by the controller`;
  return { what: `cannot write ${file}: ${code}`, fix };
}

export function describeWriteFailure(error: unknown, file: string, dir: string): string {
  const { what, fix } = explainWriteFailure(error, file, dir);
  return `${what}; ${fix}`;
}

/**
 * A file operation the system refused (EACCES on a root-owned pidfile, ENOSPC, EROFS, …) is a
 * named failure of that instance with a fix, not an "internal error" aborting the command.
 */
export async function guarded(name: string, verb: string, operation: () => Promise<Outcome>): Promise<Outcome> {
  try {
    return await operation();
  } catch (error) {
    const code = errnoCode(error);
    if (code === undefined || !(error instanceof Error)) throw error;
    const { path } = error as NodeJS.ErrnoException;
    if (code === 'E2BIG') {
      // exec refused the launch: not a path at fault, but the size of what it carries.
      return fail(name, `not ${verb}: the kernel refused to run php-fpm with arguments and an environment this large (E2BIG); shorten the env= and args= values (php-fpm-multi check names the size and the limit)`);
    }
    const fix = code === 'EACCES' || code === 'EPERM'
      ? 'run php-fpm-multi as the user that owns it (root for a system install)'
      : code === 'ENOSPC' || code === 'EDQUOT' ? 'free space there' : code === 'EROFS' ? 'remount that file system read-write' : 'check that path';
    return fail(name, `not ${verb}: ${path === undefined ? error.message : `${path}: ${code} (${error.message})`}; ${fix}`);
  }
}
