// The controller's error classes: one base carrying the exit code, and the errno helpers every
// layer uses to name what the operating system refused.
import { EXIT_FAILURE, EXIT_NOT_CONFIGURED, EXIT_USAGE } from './exit-codes.js';

/** Base of every error the controller reports on purpose; carries the process exit code. */
export class FpmMultiError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = EXIT_FAILURE) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** The command line is wrong: the message names the option or argument and the valid choices. */
export class UsageError extends FpmMultiError {
  constructor(message: string) {
    super(message, EXIT_USAGE);
  }
}

export interface SourceLocation {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, counted in characters (code points) of the line. */
  column: number;
}

/**
 * The declaration file is refused as a whole: nothing in it is used and no instance is touched.
 * The message reads `file:line:column: <what was found>. <how to fix it>`.
 */
export class DeclarationError extends FpmMultiError {
  readonly location: SourceLocation;
  readonly found: string;
  readonly fix: string;

  constructor(location: SourceLocation, found: string, fix: string) {
    super(`${location.file}:${location.line}:${location.column}: ${found}. ${fix}`, EXIT_NOT_CONFIGURED);
    this.location = location;
    this.found = found;
    this.fix = fix;
  }
}

/** The declaration file could be read but is not usable (missing, unreadable, instances with problems). */
export class NotConfiguredError extends FpmMultiError {
  constructor(message: string) {
    super(message, EXIT_NOT_CONFIGURED);
  }
}

// ---------------------------------------------------------------------------------------------
// Error causes: the one place that reads an errno code and says it in words.

/** The errno code ('ENOENT', ...) of an error thrown by a System method (fs, connect) or node:fs, if any. */
export function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/** Builds an error shaped like node:fs's, for fakes and for our own checks. */
export function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const error: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${path}'`);
  error.code = code;
  error.syscall = syscall;
  error.path = path;
  return error;
}

const ERRNO_WORDS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a component of the path is not a directory',
  ELOOP: 'too many symlinks',
  EIO: 'input/output error',
};

/** "read-only file system (EROFS)" for an errno error; the plain message otherwise. */
export function describeErrno(error: unknown): string {
  const code = errnoCode(error);
  if (code === undefined) return error instanceof Error ? error.message : String(error);
  return `${ERRNO_WORDS[code] ?? 'failed'} (${code})`;
}

