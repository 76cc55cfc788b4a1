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
