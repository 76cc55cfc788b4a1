#!/usr/bin/env node
import { realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import minimist from 'minimist';
import type { Command, Io } from './command.js';
import { FpmMultiError, UsageError } from './errors.js';
import { EXIT_FAILURE, EXIT_OK } from './exit-codes.js';
import { resolveConfPath } from './load.js';

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

/** Each command is loaded only when it runs, so `status` does not pay for `start`'s modules. */
const COMMANDS: Record<string, { summary: string; load: (options: CommandOptions) => Promise<Command> }> = {
  list: { summary: 'show the declared instances (--json: machine-readable)', load: async () => (await import('./commands/list.js')).list },
  check: { summary: 'exit 0 when every enabled instance is usable, else print each problem', load: async () => (await import('./commands/check.js')).check },
  start: { summary: 'config test, start (idempotent), wait for ping.path pools; --partial: exit 0 if any runs', load: async () => (await import('./commands/control.js')).start },
  stop: { summary: 'graceful stop: SIGQUIT, SIGTERM after stop_timeout, then SIGKILL', load: async () => (await import('./commands/control.js')).stop },
  restart: { summary: 'config test, then stop and start (a broken config stops nothing)', load: async () => (await import('./commands/control.js')).restart },
  reload: { summary: 'config test, then SIGUSR2; waits for the new master and its ping.path pools', load: async () => (await import('./commands/control.js')).reload },
  reopen: { summary: 'SIGUSR1: php-fpm reopens its log files', load: async () => (await import('./commands/control.js')).reopen },
  status: {
    summary: "state of every instance (--json); exit 0/1/3/4/32 as OpenRC; --pools: each pool's figures",
    load: async ({ pools }) => (pools ? (await import('./commands/pool-status.js')).showPoolStatus : (await import('./commands/status.js')).status),
  },
  configtest: { summary: "php-fpm's own configuration test of each instance", load: async () => (await import('./commands/control.js')).configtest },
  health: {
    summary: 'exit 0 when every instance runs and every ping.path pool answers; else one line each',
    load: async ({ format }) => {
      const module = await import('./commands/health.js');
      return format === 'prometheus' ? module.exportHealthMetrics : module.health;
    },
  },
};

export const HELP = `Usage: php-fpm-multi [--conf FILE] [--json] <command> [instance…]

Runs every PHP-FPM instance declared in one file (default: $PHP_FPM_MULTI_CONF,
else \${EPREFIX}/etc/conf.d/php-fpm). The file is read, never executed.

Commands:
${Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(11)}${summary}`).join('\n')}

Instances: names as declared (FPM_slot_<name>), comma lists and ranges: 1,3-5 web.
Without names, a command acts on every enabled instance.

Options:
  -c, --conf FILE    the declaration file
      --json         machine-readable output (list, status, status --pools)
      --partial      start: succeed when at least one instance runs (for init systems)
      --pools        status: one row per pool (processes, listen queue, accepted
                     connections, …) from each pool's status page (pm.status_path)
      --format FMT   health: text (default: one line per failure, nothing when healthy)
                     or prometheus (text exposition for node_exporter's textfile collector)
  -h, --help         this help
  -V, --version      the version

Exit codes:
  0  success; health: every instance runs and every pool answers
  1  the command failed for at least one instance (each failure is named);
     health: an instance is not running or a pool does not answer in time
  2  usage error (unknown command, option or instance)
  3  status: no instance running, none crashed
  4  status: the state of an instance cannot be determined
  6  the declaration file is unusable or refused (nothing was touched)
  32 status: at least one instance crashed (should run, does not)
`;

function readVersion(): string {
  const require = createRequire(import.meta.url);
  return (require('../package.json') as { version: string }).version;
}

/** --format goes with health only, and names one of HEALTH_FORMATS (default text). */
function readHealthFormat(command: string, args: minimist.ParsedArgs): HealthFormat {
  if (command === 'health' && args['json']) throw new UsageError('health has no --json; use --format prometheus for machine-readable output');
  const given: unknown = args['format'];
  if (given === undefined) return 'text';
  if (command !== 'health') throw new UsageError(`--format goes with health, not ${command}`);
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
    if (args.partial && name !== 'start') throw new UsageError(`--partial goes with start, not ${name}`);
    if (args.pools && name !== 'status') throw new UsageError(`--pools goes with status, not ${name}`);
    const command = await entry.load({ pools: Boolean(args.pools), format: readHealthFormat(name, args) });
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
 * Output is best effort, the work is not: a reader that went away (`php-fpm-multi start | head -1`)
 * must not abort a start half-way through, leaving masters without records.
 */
function ignoreClosedOutput(stream: NodeJS.WriteStream): void {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

if (isEntryPoint()) {
  ignoreClosedOutput(process.stdout);
  ignoreClosedOutput(process.stderr);
  const io: Io = {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    uid: process.getuid?.() ?? 0,
  };
  process.exitCode = await main(process.argv.slice(2), io);
}
