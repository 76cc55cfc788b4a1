// What a command receives and returns: the contract between src/cli/main.ts and src/commands/*.

import type { DeclarationForm } from '../model/discovery.js';
import type { System } from '../process/system.js';
import type { Reporting } from './reporter.js';

/** What every command receives: its output streams, environment and parsed command line. */
export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
  env: Readonly<Record<string, string | undefined>>;
  /**
   * The processes, files and sockets every command acts on, built once by the entry point (a
   * fake in unit tests). Its uid decides the default run directory and the trust checks.
   */
  system: System;
  /** Whether each stream is a terminal (for the openrc style's colours); absent: neither. */
  terminal?: { stdout: boolean; stderr: boolean };
  /** How lines are written (src/cli/reporter.ts); absent: the plain style. Set by src/cli/main.ts. */
  reporting?: Reporting;
}

export interface CommandContext {
  io: Io;
  /** The declaration file. */
  conf: string;
  json: boolean;
  /** `list --names`: the declared instance names alone (absent: false). */
  names?: boolean;
  /** Instance names, comma lists and ranges as given on the command line. */
  selection: string[];
  /** `start --partial`: succeed when at least one selected instance runs afterwards. */
  partial: boolean;
  /** `restart --rolling`: one instance at a time (absent: false). */
  rolling?: boolean;
  /** `discover --form`: the declaration form asked for (absent: the one /bin/sh reads). */
  form?: DeclarationForm;
  /** `logs -n LINES`: how many lines of each log (absent: DEFAULT_LOG_LINES). */
  lines?: number;
  /** `logs --follow`: keep printing new lines. */
  follow?: boolean;
}

/** A command returns its exit code; only src/cli.ts turns it into the process's. */
export type Command = (context: CommandContext) => Promise<number>;
