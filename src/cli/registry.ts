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
export type CommandOption = 'json' | 'names' | 'partial' | 'pools' | 'format' | 'rolling' | 'form' | 'quiet' | 'lines' | 'follow';

export const DECLARATION_FORMS = ['string', 'array'] as const;

export interface CommandEntry {
  name: string;
  summary: string;
  /** The options it accepts besides --conf: any other is a usage error, never silently ignored. */
  options: readonly CommandOption[];
  /** False for a command that acts on no declared instance: names after it are a usage error. */
  takesInstances?: false;
  /** Its exit codes with their meaning for this command, for `help COMMAND` (and the man page). */
  exits: readonly ExitEntry[];
  load: (choice: CommandChoice) => Promise<Command>;
}

/** An exit code and what it means for one command. */
export type ExitEntry = readonly [code: number, meaning: string];

/** What every command may exit with besides its own codes. */
const USAGE: ExitEntry = [2, 'usage error (unknown command, option or instance)'];
const NEEDS_ROOT: ExitEntry = [4, 'needs root: an ordinary user acting on what root runs (nothing was touched)'];
const UNUSABLE: ExitEntry = [6, 'the declaration file is unusable or refused, or its run directory is untrusted or unusable (nothing was touched)'];
/** start, stop, restart, reload, reopen, configtest. */
function actingExits(verb: string, success = `every selected instance ${verb}`): readonly ExitEntry[] {
  return [[0, success], [1, `at least one instance not ${verb} (each is named)`], USAGE, NEEDS_ROOT, UNUSABLE];
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: 'list', summary: 'show the declared instances (--json: machine-readable; --names: names only)', options: ['json', 'names'],
    exits: [[0, 'the declared instances were listed'], USAGE, UNUSABLE], load: async () => (await import('../commands/list.js')).list,
  },
  { name: 'check', summary: 'exit 0 when every enabled instance is usable, else print each problem', options: [],
    exits: [[0, 'every selected enabled instance is usable'], USAGE, [6, 'a problem was found (each is printed), e.g. bash arrays in a file OpenRC sources with a /bin/sh that is not bash']],
    load: async () => (await import('../commands/check.js')).check },
  {
    name: 'start', summary: 'start what is not running (idempotent; php-fpm\'s start-up tests its config), wait for ping.path pools; --partial: exit 0 if any runs', options: ['partial', 'quiet'],
    exits: actingExits('started', 'every selected instance started; --partial: at least one runs'),
    load: async () => (await import('../commands/lifecycle.js')).start,
  },
  { name: 'stop', summary: 'graceful stop: SIGQUIT, SIGTERM after stop_timeout, then SIGKILL', options: ['quiet'],
    exits: [[0, 'nothing of this file runs any more'], [1, 'an instance is still running (named), or nothing tells what runs (an unusable file, no record)'], USAGE, NEEDS_ROOT, UNUSABLE],
    load: async () => (await import('../commands/lifecycle.js')).stop },
  {
    name: 'restart', summary: "check's checks and every config test first, then a new master takes the sockets over (else stop+start); what would fail stops nothing", options: ['rolling', 'quiet'],
    exits: actingExits('restarted'),
    load: async () => (await import('../commands/lifecycle.js')).restart,
  },
  {
    name: 'reload', summary: "check's checks and config test, then SIGUSR2 (a changed slot/binary: live switch); waits for the new master and its ping.path pools", options: ['quiet'],
    exits: actingExits('reloaded'),
    load: async () => (await import('../commands/lifecycle.js')).reload,
  },
  { name: 'reopen', summary: 'SIGUSR1: php-fpm reopens its log files', options: [], exits: actingExits('reopened'),
    load: async () => (await import('../commands/lifecycle.js')).reopen },
  {
    name: 'status',
    summary: "state of every instance (--json); exit 0/1/3/4/32 as OpenRC; --pools: each pool's figures",
    options: ['json', 'pools'],
    exits: [
      [0, 'every enabled instance runs (disabled instances never change the code)'],
      [1, 'some enabled instances run and some do not, or only an orphan runs'],
      USAGE,
      [3, 'no enabled instance runs, none crashed'],
      [4, 'the state of an instance cannot be determined (an ordinary user and root\'s files)'],
      [32, 'an enabled instance crashed, or failed under a supervisor (should run, does not)'],
    ],
    load: async ({ pools }) => (pools ? (await import('../commands/status-pools.js')).showPoolStatus : (await import('../commands/status.js')).status),
  },
  {
    name: 'supervise', summary: 'foreground: keep every instance running (crash restarts with backoff, restart_limit, health_restart)', options: [],
    exits: [[0, 'stopped by SIGTERM or SIGINT after stopping every supervised instance'], [1, 'it could not go on'], USAGE, NEEDS_ROOT, UNUSABLE],
    load: async () => (await import('../commands/supervise.js')).supervise,
  },
  {
    name: 'logs', summary: "the last lines of each instance's php-fpm error_log (from its config), prefixed with its name when several", options: ['lines', 'follow'],
    exits: [[0, 'the logs were shown (-f: until SIGINT or SIGTERM)'], [1, 'a log or a config could not be read (named; the others are shown)'], USAGE, UNUSABLE],
    load: async () => (await import('../commands/logs.js')).logs,
  },
  { name: 'configtest', summary: "php-fpm's own configuration test of each instance", options: [], exits: actingExits('tested'),
    load: async () => (await import('../commands/lifecycle.js')).configtest },
  {
    name: 'health',
    summary: 'exit 0 when every instance runs and every ping.path pool answers; else one line each',
    options: ['format'],
    exits: [
      [0, 'every selected instance runs and every pool answers'], [1, 'an instance is not running or a pool does not answer in time'], USAGE,
      [4, 'the state of an instance cannot be determined (an ordinary user and root\'s instances)'], UNUSABLE,
    ],
    load: async ({ format }) => {
      const module = await import('../commands/health.js');
      return format === 'prometheus' ? module.exportHealthMetrics : module.health;
    },
  },
  {
    name: 'discover',
    summary: "print a declaration of every php-fpm installed with its distribution's default config, with the fixes check needs",
    options: ['form'],
    takesInstances: false,
    exits: [[0, 'a declaration was printed (a warning counts the instances with fix lines)'], [1, 'no php-fpm with a default config was found'], USAGE],
    load: async () => (await import('../commands/discover.js')).discover,
  },
  {
    name: 'help', summary: 'help COMMAND: the summary, options and exit codes of one command (as COMMAND --help)', options: [],
    exits: [[0, 'the help was printed'], [2, 'unknown command']],
    load: async () => (await import('./help.js')).showHelp,
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
export const GLOBAL_OPTIONS: readonly OptionEntry[] = [
  { name: 'conf', alias: 'c', argument: 'FILE', help: ['every command: the declaration file'] },
  {
    name: 'style',
    argument: 'STYLE',
    help: [
      'every command: how lines are written: plain (default: "php-fpm-multi: …")',
      'or openrc (" * …" as einfo/ewarn/eerror, honouring EINFO_QUIET, EINFO_COLOR,',
      'EINFO_INDENT; what the OpenRC runscript passes)',
    ],
  },
];
/** Options of the command line itself (no command runs). */
export const PROGRAM_OPTIONS: readonly OptionEntry[] = [
  { name: 'help', alias: 'h', help: ['this help; with a command: that command\'s help'] },
  { name: 'version', alias: 'V', help: ['the version'] },
];
export const COMMAND_OPTIONS: Readonly<Record<CommandOption, OptionEntry>> = {
  json: { name: 'json', help: ['machine-readable output'] },
  names: {
    name: 'names',
    help: ['only the declared instance names, one a line, from the file', 'alone (shell completion asks it; nothing else is looked at)'],
  },
  partial: { name: 'partial', help: ['succeed when at least one instance runs (init systems)'] },
  quiet: { name: 'quiet', alias: 'q', help: ['print only failures (the exit code is unchanged)'] },
  rolling: { name: 'rolling', help: ['one instance at a time, so that the others keep serving'] },
  pools: {
    name: 'pools',
    help: ['one row per pool (processes, listen queue, accepted', 'connections, …) from each pool\'s status page (pm.status_path)'],
  },
  form: {
    name: 'form',
    argument: 'FORM',
    help: ['string (any /bin/sh) or array (bash only);', 'default: array where /bin/sh is bash, else string'],
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
