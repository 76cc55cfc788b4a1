// argv → one command: parses the command line against the registry (src/cli/registry.ts), prints
// --help and --version, runs the command and turns every error into an exit code and one line on
// stderr. It never exits the process itself (src/cli.ts sets process.exitCode).

import { createRequire } from 'node:module';
import minimist from 'minimist';
import { FpmMultiError, UsageError } from '../errors.js';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.js';
import { resolveConfPath } from '../model/load.js';
import type { Io } from './command.js';
import {
  COMMAND_OPTIONS, COMMANDS, commandsTaking, findCommand, GLOBAL_OPTIONS, HEALTH_FORMATS, PROGRAM_OPTIONS, type CommandEntry, type CommandOption,
  type HealthFormat, type OptionEntry,
} from './registry.js';
import { PROGRAM_NAME, reportError } from './reporter.js';

const ALL_OPTIONS: readonly OptionEntry[] = [...GLOBAL_OPTIONS, ...Object.values(COMMAND_OPTIONS), ...PROGRAM_OPTIONS];
const COMMAND_OPTION_NAMES = Object.keys(COMMAND_OPTIONS) as CommandOption[];
const KNOWN_OPTIONS = new Set([...ALL_OPTIONS.flatMap((option) => (option.alias === undefined ? [option.name] : [option.name, option.alias])), '_', '--']);
const ARGV_OPTIONS = {
  string: ALL_OPTIONS.filter((option) => option.argument !== undefined).map((option) => option.name),
  boolean: ALL_OPTIONS.filter((option) => option.argument === undefined).map((option) => option.name),
  alias: Object.fromEntries(ALL_OPTIONS.flatMap((option) => (option.alias === undefined ? [] : [[option.alias, option.name]]))),
};
/** Where an option's help text starts: after "  -c, --conf FILE    ". */
const HELP_TEXT_COLUMN = 21;

function describeOption(option: OptionEntry, lines: readonly string[]): string {
  const flag = `  ${option.alias === undefined ? '    ' : `-${option.alias}, `}--${option.name}${option.argument === undefined ? '' : ` ${option.argument}`}`;
  const [first = '', ...rest] = lines;
  return [`${flag.padEnd(HELP_TEXT_COLUMN)}${first}`, ...rest.map((line) => `${' '.repeat(HELP_TEXT_COLUMN)}${line}`)].join('\n');
}

function describeOptions(): string {
  return [
    ...GLOBAL_OPTIONS.map((option) => describeOption(option, option.help)),
    ...COMMAND_OPTION_NAMES.map((name) => {
      const option = COMMAND_OPTIONS[name];
      const [first = '', ...rest] = option.help;
      return describeOption(option, [`${commandsTaking(name).join(', ')}: ${first}`, ...rest]);
    }),
    ...PROGRAM_OPTIONS.map((option) => describeOption(option, option.help)),
  ].join('\n');
}

export const HELP = `Usage: ${PROGRAM_NAME} [--conf FILE] [--json] <command> [instance…]

Runs every PHP-FPM instance declared in one file (default: $PHP_FPM_MULTI_CONF,
else \${EPREFIX}/etc/conf.d/php-fpm). The file is read, never executed.

Commands:
${COMMANDS.map(({ name, summary }) => `  ${name.padEnd(11)}${summary}`).join('\n')}

Instances: names as declared (FPM_slot_<name>), comma lists and ranges: 1,3-5 web.
Without names, a command acts on every enabled instance.

supervise runs in the foreground: SIGTERM or SIGINT stops every supervised
instance and exits 0, SIGHUP re-reads the file. Keys: restart_limit=COUNT/SECONDS
(default 5/300), health_restart=N (opt-in), health_interval=SECONDS (default 10).

Instances removed from the file but still recorded as started are valid names
for stop and status. When the file is unusable, stop and status warn and act on
the records in its run directory (and in the one its last start used) alone; with
nothing recorded anywhere, status exits 4 and stop 1. The other commands refuse an
unusable file (exit 6).

Options (any other option of a command is a usage error, exit 2):
${describeOptions()}

Exit codes:
  0  success; health: every instance runs and every pool answers
  1  the command failed for at least one instance (each failure is named);
     status: some instances run and some do not, or only an orphan runs;
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

/** Set by the build (scripts/build.mjs) in the bundle, which has no package.json beside it. */
declare const PHP_FPM_MULTI_VERSION: string | undefined;

function readVersion(): string {
  if (typeof PHP_FPM_MULTI_VERSION === 'string') return PHP_FPM_MULTI_VERSION;
  const require = createRequire(import.meta.url);
  return (require('../../package.json') as { version: string }).version;
}

/** An option given to a command that does not take it is a usage error naming all three. */
function refuseForeignOptions(entry: CommandEntry, args: minimist.ParsedArgs): void {
  const given = COMMAND_OPTION_NAMES.filter((option) => args[option] !== undefined && args[option] !== false);
  for (const option of given) {
    if (entry.options.includes(option)) continue;
    if (option === 'json' && entry.name === 'health') throw new UsageError('health has no --json; use --format prometheus for machine-readable output');
    throw new UsageError(`--${option} goes with ${commandsTaking(option).join(', ')}, not ${entry.name}`);
  }
}

/** --format (health only: refuseForeignOptions) names one of HEALTH_FORMATS (default text). */
function readHealthFormat(args: minimist.ParsedArgs): HealthFormat {
  const given: unknown = args['format'];
  if (given === undefined) return 'text';
  const format = HEALTH_FORMATS.find((known) => known === given);
  if (format === undefined) throw new UsageError(`unknown --format ${JSON.stringify(Array.isArray(given) ? given.join(' ') : given)}; one of: ${HEALTH_FORMATS.join(', ')}`);
  return format;
}

function parseArgv(argv: readonly string[]): minimist.ParsedArgs {
  return minimist([...argv], {
    ...ARGV_OPTIONS,
    unknown: (arg) => {
      if (arg.startsWith('-') && !KNOWN_OPTIONS.has(arg.replace(/^--?/, '').replace(/=.*$/, ''))) {
        throw new UsageError(`unknown option ${arg}; see ${PROGRAM_NAME} --help`);
      }
      return true;
    },
  });
}

/** Parses argv, runs one command and returns its exit code; it never exits the process itself. */
export async function main(argv: readonly string[], io: Io): Promise<number> {
  try {
    const args = parseArgv(argv);
    if (args['help']) {
      io.stdout(HELP);
      return EXIT_OK;
    }
    if (args['version']) {
      io.stdout(`${PROGRAM_NAME} ${readVersion()}\n`);
      return EXIT_OK;
    }
    const [name, ...selection] = args._.map(String);
    const names = COMMANDS.map((entry) => entry.name).join(', ');
    if (name === undefined) throw new UsageError(`no command given; one of: ${names}`);
    const entry = findCommand(name);
    if (entry === undefined) throw new UsageError(`unknown command "${name}"; one of: ${names}`);
    if (args['conf'] === '') throw new UsageError('--conf needs a file name');
    refuseForeignOptions(entry, args);
    const command = await entry.load({ pools: Boolean(args['pools']), format: readHealthFormat(args) });
    const conf = resolveConfPath(args['conf'] as string | undefined, io.env);
    return await command({ io, conf, json: Boolean(args['json']), selection, partial: Boolean(args['partial']), rolling: Boolean(args['rolling']) });
  } catch (error) {
    if (error instanceof FpmMultiError) {
      reportError(io, error.message);
      return error.exitCode;
    }
    reportError(io, `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return EXIT_FAILURE;
  }
}
