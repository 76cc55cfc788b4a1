// The command line's vocabulary in one declarative table: every command with its summary, the
// options it accepts and how to load it, and every option with its help text. Parsing
// (src/cli/main.ts) validates against it, and --help is printed from it, so a command never
// silently ignores an option and the help cannot drift from what is accepted.
// Loading a command module happens only when it runs: `status` does not pay for `start`'s modules.

import type { Command } from './command.js';

export const HEALTH_FORMATS = ['text', 'prometheus'] as const;
export type HealthFormat = (typeof HEALTH_FORMATS)[number];

/** Options that choose which function of a command runs (read before its module is loaded). */
export interface CommandChoice {
  pools: boolean;
  format: HealthFormat;
}

/** The options a command may accept; --conf, --help and --version go with every command. */
export type CommandOption = 'json' | 'partial' | 'pools' | 'format' | 'rolling' | 'lines' | 'follow';

export interface CommandEntry {
  name: string;
  summary: string;
  /** The options it accepts besides --conf: any other is a usage error, never silently ignored. */
  options: readonly CommandOption[];
  load: (choice: CommandChoice) => Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  { name: 'list', summary: 'show the declared instances (--json: machine-readable)', options: ['json'], load: async () => (await import('../commands/list.js')).list },
  { name: 'check', summary: 'exit 0 when every enabled instance is usable, else print each problem', options: [], load: async () => (await import('../commands/check.js')).check },
  {
    name: 'start', summary: 'config test, start (idempotent), wait for ping.path pools; --partial: exit 0 if any runs', options: ['partial'],
    load: async () => (await import('../commands/lifecycle.js')).start,
  },
  { name: 'stop', summary: 'graceful stop: SIGQUIT, SIGTERM after stop_timeout, then SIGKILL', options: [], load: async () => (await import('../commands/lifecycle.js')).stop },
  {
    name: 'restart', summary: "check's checks and every config test first, then a new master takes the sockets over (else stop+start); what would fail stops nothing", options: ['rolling'],
    load: async () => (await import('../commands/lifecycle.js')).restart,
  },
  {
    name: 'reload', summary: "check's checks and config test, then SIGUSR2 (a changed slot/binary: live switch); waits for the new master and its ping.path pools", options: [],
    load: async () => (await import('../commands/lifecycle.js')).reload,
  },
  { name: 'reopen', summary: 'SIGUSR1: php-fpm reopens its log files', options: [], load: async () => (await import('../commands/lifecycle.js')).reopen },
  {
    name: 'status',
    summary: "state of every instance (--json); exit 0/1/3/4/32 as OpenRC; --pools: each pool's figures",
    options: ['json', 'pools'],
    load: async ({ pools }) => (pools ? (await import('../commands/status-pools.js')).showPoolStatus : (await import('../commands/status.js')).status),
  },
  {
    name: 'supervise', summary: 'foreground: keep every instance running (crash restarts with backoff, restart_limit, health_restart)', options: [],
    load: async () => (await import('../commands/supervise.js')).supervise,
  },
  {
    name: 'logs', summary: "the last lines of each instance's php-fpm error_log (from its config), prefixed with its name when several", options: ['lines', 'follow'],
    load: async () => (await import('../commands/logs.js')).logs,
  },
  { name: 'configtest', summary: "php-fpm's own configuration test of each instance", options: [], load: async () => (await import('../commands/lifecycle.js')).configtest },
  {
    name: 'health',
    summary: 'exit 0 when every instance runs and every ping.path pool answers; else one line each',
    options: ['format'],
    load: async ({ format }) => {
      const module = await import('../commands/health.js');
      return format === 'prometheus' ? module.exportHealthMetrics : module.health;
    },
  },
];

export interface OptionEntry {
  name: string;
  alias?: string;
  /** A string option's argument as --help shows it; a boolean option has none. */
  argument?: string;
  /** For a command option: what it does (after the commands that take it); else the whole text. Lines after the first are indented. */
  help: readonly string[];
}

/** Options of every command, before the commands' own. */
export const GLOBAL_OPTIONS: readonly OptionEntry[] = [{ name: 'conf', alias: 'c', argument: 'FILE', help: ['every command: the declaration file'] }];
/** Options of the command line itself (no command runs). */
export const PROGRAM_OPTIONS: readonly OptionEntry[] = [
  { name: 'help', alias: 'h', help: ['this help'] },
  { name: 'version', alias: 'V', help: ['the version'] },
];
export const COMMAND_OPTIONS: Readonly<Record<CommandOption, OptionEntry>> = {
  json: { name: 'json', help: ['machine-readable output'] },
  partial: { name: 'partial', help: ['succeed when at least one instance runs (init systems)'] },
  rolling: { name: 'rolling', help: ['one instance at a time, so that the others keep serving'] },
  pools: {
    name: 'pools',
    help: ['one row per pool (processes, listen queue, accepted', 'connections, …) from each pool\'s status page (pm.status_path)'],
  },
  lines: { name: 'lines', alias: 'n', argument: 'LINES', help: ['how many lines of each log (default 10)'] },
  follow: {
    name: 'follow', alias: 'f',
    help: ['keep printing new lines of every log, across reopen, rotation', '(a new file at the path) and truncation, until SIGINT/SIGTERM'],
  },
  format: {
    name: 'format',
    argument: 'FMT',
    help: [
      'text (default: one line per failure, nothing when healthy)',
      "or prometheus (text exposition for node_exporter's textfile collector)",
    ],
  },
};

export function findCommand(name: string): CommandEntry | undefined {
  return COMMANDS.find((entry) => entry.name === name);
}

/** The commands that take `option`, for messages and --help. */
export function commandsTaking(option: CommandOption): string[] {
  return COMMANDS.filter((entry) => entry.options.includes(option)).map((entry) => entry.name);
}
