#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import type { Command, Io } from './cli/command.js';
import { FpmMultiError, UsageError } from './errors.js';
import { EXIT_FAILURE, EXIT_OK } from './exit-codes.js';
import { resolveConfPath } from './model/load.js';

const ARGV_OPTIONS = {
  string: ['conf', 'format'],
  boolean: ['json', 'help', 'version', 'partial', 'pools'],
  alias: { c: 'conf', h: 'help', V: 'version' },
} as const;
const KNOWN_OPTIONS = new Set(['conf', 'c', 'json', 'help', 'h', 'version', 'V', 'partial', 'pools', 'format', '_', '--']);
/** Kept here so that parsing the command line loads no command module. */
const HEALTH_FORMATS = ['text', 'prometheus'] as const;
type HealthFormat = (typeof HEALTH_FORMATS)[number];

/** Options that choose what a command does (checked against the command before it is loaded). */
interface CommandOptions {
  pools: boolean;
  format: HealthFormat;
}

/** Options of one command (--conf, --help and --version go with every command). */
type CommandOption = 'json' | 'partial' | 'pools' | 'format';

interface CommandEntry {
  summary: string;
  /** The options it accepts besides --conf: any other is a usage error, never silently ignored. */
  options: readonly CommandOption[];
  load: (options: CommandOptions) => Promise<Command>;
}

/** Each command is loaded only when it runs, so `status` does not pay for `start`'s modules. */
const COMMANDS: Record<string, CommandEntry> = {
  list: { summary: 'show the declared instances (--json: machine-readable)', options: ['json'], load: async () => (await import('./commands/list.js')).list },
  check: { summary: 'exit 0 when every enabled instance is usable, else print each problem', options: [], load: async () => (await import('./commands/check.js')).check },
  start: { summary: 'config test, start (idempotent), wait for ping.path pools; --partial: exit 0 if any runs', options: ['partial'], load: async () => (await import('./commands/lifecycle.js')).start },
  stop: { summary: 'graceful stop: SIGQUIT, SIGTERM after stop_timeout, then SIGKILL', options: [], load: async () => (await import('./commands/lifecycle.js')).stop },
  restart: { summary: 'config test, then stop and start (a broken config stops nothing)', options: [], load: async () => (await import('./commands/lifecycle.js')).restart },
  reload: { summary: 'config test, then SIGUSR2; waits for the new master and its ping.path pools', options: [], load: async () => (await import('./commands/lifecycle.js')).reload },
  reopen: { summary: 'SIGUSR1: php-fpm reopens its log files', options: [], load: async () => (await import('./commands/lifecycle.js')).reopen },
  status: {
    summary: "state of every instance (--json); exit 0/1/3/4/32 as OpenRC; --pools: each pool's figures",
    options: ['json', 'pools'],
    load: async ({ pools }) => (pools ? (await import('./commands/status-pools.js')).showPoolStatus : (await import('./commands/status.js')).status),
  },
  supervise: {
    summary: 'foreground: keep every instance running (crash restarts with backoff, restart_limit, health_restart)',
    options: [],
    load: async () => (await import('./commands/supervise.js')).supervise,
  },
  configtest: { summary: "php-fpm's own configuration test of each instance", options: [], load: async () => (await import('./commands/lifecycle.js')).configtest },
  health: {
    summary: 'exit 0 when every instance runs and every ping.path pool answers; else one line each',
    options: ['format'],
    load: async ({ format }) => {
      const module = await import('./commands/health.js');
      return format === 'prometheus' ? module.exportHealthMetrics : module.health;
    },
  },
};

/** The commands that take `option`, for messages and --help. */
function commandsTaking(option: CommandOption): string[] {
  return Object.entries(COMMANDS).filter(([, entry]) => entry.options.includes(option)).map(([name]) => name);
}

/** An option given to a command that does not take it is a usage error naming all three. */
function refuseForeignOptions(command: string, entry: CommandEntry, args: minimist.ParsedArgs): void {
  const given = (['json', 'partial', 'pools', 'format'] as const).filter((option) => args[option] !== undefined && args[option] !== false);
  for (const option of given) {
    if (entry.options.includes(option)) continue;
    if (option === 'json' && command === 'health') throw new UsageError('health has no --json; use --format prometheus for machine-readable output');
    throw new UsageError(`--${option} goes with ${commandsTaking(option).join(', ')}, not ${command}`);
  }
}

export const HELP = `Usage: php-fpm-multi [--conf FILE] [--json] <command> [instance…]

Runs every PHP-FPM instance declared in one file (default: $PHP_FPM_MULTI_CONF,
else \${EPREFIX}/etc/conf.d/php-fpm). The file is read, never executed.

Commands:
${Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(11)}${summary}`).join('\n')}

Instances: names as declared (FPM_slot_<name>), comma lists and ranges: 1,3-5 web.
Without names, a command acts on every enabled instance.

supervise runs in the foreground: SIGTERM or SIGINT stops every supervised
instance and exits 0, SIGHUP re-reads the file. Keys: restart_limit=COUNT/SECONDS
(default 5/300), health_restart=N (opt-in), health_interval=SECONDS (default 10).

Instances removed from the file but still recorded as started are valid names
for stop and status. When the file is unusable, stop and status warn and act on
the records in its run directory alone (the other commands refuse it, exit 6).

Options (any other option of a command is a usage error, exit 2):
  -c, --conf FILE    every command: the declaration file
      --json         ${commandsTaking('json').join(', ')}: machine-readable output
      --partial      ${commandsTaking('partial').join(', ')}: succeed when at least one instance runs (init systems)
      --pools        ${commandsTaking('pools').join(', ')}: one row per pool (processes, listen queue, accepted
                     connections, …) from each pool's status page (pm.status_path)
      --format FMT   ${commandsTaking('format').join(', ')}: text (default: one line per failure, nothing when healthy)
                     or prometheus (text exposition for node_exporter's textfile collector)
  -h, --help         this help
  -V, --version      the version

Exit codes:
  0  success; health: every instance runs and every pool answers
  1  the command failed for at least one instance (each failure is named);
     health: an instance is not running or a pool does not answer in time
  2  usage error (unknown command, option or instance)
  3  status: no instance running, none crashed
  4  status, health: the state of an instance cannot be determined (for an
     ordinary user: what root runs, when its files cannot be read);
     other commands: needs root (an ordinary user acting on what root runs)
  6  the declaration file is unusable or refused, or its run directory is
     untrusted or unusable (nothing was touched or read)
  32 status: at least one instance crashed, or failed under a supervisor
     (should run, does not)
`;

function readVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}

/** --format (health only: refuseForeignOptions) names one of HEALTH_FORMATS (default text). */
function readHealthFormat(args: minimist.ParsedArgs): HealthFormat {
  const given: unknown = args['format'];
  if (given === undefined) return 'text';
  const format = HEALTH_FORMATS.find((known) => known === given);
  if (format === undefined) throw new UsageError(`unknown --format ${JSON.stringify(Array.isArray(given) ? given.join(' ') : given)}; one of: ${HEALTH_FORMATS.join(', ')}`);
  return format;
}

/** Parses argv, runs one command and returns its exit code; it never exits the process itself. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    const args = minimist([...argv], {
      ...ARGV_OPTIONS,
      string: [...ARGV_OPTIONS.string],
      boolean: [...ARGV_OPTIONS.boolean],
      unknown: (arg) => {
        if (arg.startsWith('-') && !KNOWN_OPTIONS.has(arg.replace(/^--?/, '').replace(/=.*$/, ''))) {
          throw new UsageError(`unknown option ${arg}; see php-fpm-multi --help`);
        }
        return true;
      },
    });
    if (args.help) {
      io.stdout(HELP);
      return EXIT_OK;
    }
    if (args.version) {
      io.stdout(`php-fpm-multi ${readVersion()}\n`);
      return EXIT_OK;
    }
    const [name, ...selection] = args._.map(String);
    if (name === undefined) throw new UsageError(`no command given; one of: ${Object.keys(COMMANDS).join(', ')}`);
    const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
    if (!entry) throw new UsageError(`unknown command "${name}"; one of: ${Object.keys(COMMANDS).join(', ')}`);
    if (args.conf === '') throw new UsageError('--conf needs a file name');
    refuseForeignOptions(name, entry, args);
    const command = await entry.load({ pools: Boolean(args.pools), format: readHealthFormat(args) });
    return await command({ io, conf: resolveConfPath(args.conf, io.env), json: Boolean(args.json), selection, partial: Boolean(args.partial) });
  } catch (error) {
    if (error instanceof FpmMultiError) {
      io.stderr(`php-fpm-multi: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(`php-fpm-multi: internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    return EXIT_FAILURE;
  }
}

function isEntryPoint(): boolean {
  const invoked = process.argv[1];
  if (invoked === undefined) return false;
  try {
    return realpathSync(invoked) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

/**
 * Output is best effort, the work is not: a reader that went away (`php-fpm-multi start | head -1`,
 * EPIPE), a full device (`start >/dev/full`, ENOSPC), a console gone at shutdown (EIO) must not
 * abort a start or a stop half-way through, leaving masters without records or records without
 * masters. Errors arrive asynchronously on a pipe or socket and synchronously on a file or a
 * terminal (Node writes those with writeSync): both are dropped.
 */
function ignoreOutputErrors(stream: NodeJS.WriteStream): (text: string) => void {
  stream.on('error', () => undefined);
  return (text) => {
    try {
      stream.write(text);
    } catch {
      // the text is lost; the command goes on
    }
  };
}

if (isEntryPoint()) {
  const io: Io = {
    stdout: ignoreOutputErrors(process.stdout),
    stderr: ignoreOutputErrors(process.stderr),
    env: process.env,
    uid: process.getuid?.() ?? 0,
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
