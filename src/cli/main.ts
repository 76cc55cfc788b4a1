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
  COMMAND_OPTIONS, COMMANDS, commandsTaking, DECLARATION_FORMS, findCommand, GLOBAL_OPTIONS, HEALTH_FORMATS, PROGRAM_OPTIONS, type CommandEntry, type CommandOption,
  type OptionEntry,
} from './registry.js';
import { chooseReporting, OUTPUT_STYLES, PROGRAM_NAME, reportError } from './reporter.js';
import { describeCommandNamed, HELP } from './help.js';

export { HELP } from './help.js';

const ALL_OPTIONS: readonly OptionEntry[] = [...GLOBAL_OPTIONS, ...Object.values(COMMAND_OPTIONS), ...PROGRAM_OPTIONS];
const COMMAND_OPTION_NAMES = Object.keys(COMMAND_OPTIONS) as CommandOption[];
const KNOWN_OPTIONS = new Set([...ALL_OPTIONS.flatMap((option) => (option.alias === undefined ? [option.name] : [option.name, option.alias])), '_', '--']);
const ARGV_OPTIONS = {
  string: ALL_OPTIONS.filter((option) => option.argument !== undefined).map((option) => option.name),
  boolean: ALL_OPTIONS.filter((option) => option.argument === undefined).map((option) => option.name),
  alias: Object.fromEntries(ALL_OPTIONS.flatMap((option) => (option.alias === undefined ? [] : [[option.alias, option.name]]))),
};

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

/**
 * The value of a string option that names one of `choices` (--style, --format, --form); absent:
 * undefined. Anything else is a usage error naming the option, the value and the valid choices.
 */
function readChoice<T extends string>(args: minimist.ParsedArgs, option: string, choices: readonly T[]): T | undefined {
  const given: unknown = args[option];
  if (given === undefined) return undefined;
  const choice = choices.find((known) => known === given);
  if (choice === undefined) throw new UsageError(`unknown --${option} ${JSON.stringify(Array.isArray(given) ? given.join(' ') : given)}; one of: ${choices.join(', ')}`);
  return choice;
}

/** -n/--lines (logs only: refuseForeignOptions): a count of lines, 0 or more; absent: the command's default. */
function readLineCount(args: minimist.ParsedArgs): number | undefined {
  const given: unknown = args['lines'];
  if (given === undefined) return undefined;
  const text = Array.isArray(given) ? String(given[given.length - 1]) : String(given);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new UsageError(`-n/--lines needs a number of lines (0 or more), not ${JSON.stringify(text)}`);
  return Number(text);
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
export async function main(argv: readonly string[], given: Io): Promise<number> {
  let io = given;
  try {
    const args = parseArgv(argv);
    io = { ...given, reporting: chooseReporting(readChoice(args, 'style', OUTPUT_STYLES) ?? 'plain', Boolean(args['quiet']), given.env, given.terminal ?? { stdout: false, stderr: false }) };
    if (args['help']) {
      // `COMMAND --help`: that command's help (a command option given with it does not matter).
      const [name] = args._.map(String);
      io.stdout(name === undefined ? HELP : describeCommandNamed(name));
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
    if (entry.takesInstances === false && selection.length > 0) {
      throw new UsageError(`${entry.name} takes no instance names (${entry.summary}); got ${selection.join(' ')}`);
    }
    const command = await entry.load({ pools: Boolean(args['pools']), format: readChoice(args, 'format', HEALTH_FORMATS) ?? 'text' });
    const conf = resolveConfPath(args['conf'] as string | undefined, io.env);
    const form = readChoice(args, 'form', DECLARATION_FORMS);
    const lines = readLineCount(args);
    return await command({
      io, conf, json: Boolean(args['json']), names: Boolean(args['names']), selection, partial: Boolean(args['partial']), rolling: Boolean(args['rolling']),
      ...(form === undefined ? {} : { form }), ...(lines === undefined ? {} : { lines }), follow: Boolean(args['follow']),
    });
  } catch (error) {
    if (error instanceof FpmMultiError) {
      reportError(io, error.message);
      return error.exitCode;
    }
    reportError(io, `internal error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    return EXIT_FAILURE;
  }
}
