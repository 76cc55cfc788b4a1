// The help texts, generated from the registry (src/cli/registry.ts) so that they cannot drift
// from what the command line accepts: --help (every command and option) and `help COMMAND` /
// `COMMAND --help` (one command: its summary, options and exit codes).

import type { Command } from './command.js';
import { UsageError } from '../errors.js';
import { EXIT_OK } from '../exit-codes.js';
import { COMMAND_OPTIONS, COMMANDS, commandsTaking, findCommand, GLOBAL_OPTIONS, PROGRAM_OPTIONS, type CommandEntry, type CommandOption, type OptionEntry } from './registry.js';
import { PROGRAM_NAME } from './reporter.js';

const COMMAND_OPTION_NAMES = Object.keys(COMMAND_OPTIONS) as CommandOption[];

/** Where an option's help text starts: after "  -c, --conf FILE    ". */
const HELP_TEXT_COLUMN = 21;

function describeOption(option: OptionEntry, lines: readonly string[]): string {
  const flag = `  ${option.alias === undefined ? '    ' : `-${option.alias}, `}--${option.name}${option.argument === undefined ? '' : ` ${option.argument}`}`;
  const [first = '', ...rest] = lines;
  return [`${flag.padEnd(HELP_TEXT_COLUMN)}${first}`, ...rest.map((line) => `${' '.repeat(HELP_TEXT_COLUMN)}${line}`)].join('\n');
}

/** Every option, as --help lists them. */
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

export const HELP = `Usage: ${PROGRAM_NAME} [--conf FILE] [--style STYLE] [--json] <command> [instance…]
       ${PROGRAM_NAME} help COMMAND   (or COMMAND --help): one command's options and exit codes

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


/** One command's help: usage, summary, options and exit codes. */
export function describeCommand(entry: CommandEntry): string {
  const flags = entry.options.map((name) => {
    const option = COMMAND_OPTIONS[name];
    return `[--${option.name}${option.argument === undefined ? '' : ` ${option.argument}`}]`;
  });
  const isHelp = entry.name === 'help';
  const operands = isHelp ? 'COMMAND' : '[instance…]';
  const options = [
    ...(isHelp ? [] : GLOBAL_OPTIONS).map((option) => describeOption(option, option.help.map((line, index) => (index === 0 ? line.replace(/^every command: /, '') : line)))),
    ...entry.options.map((name) => describeOption(COMMAND_OPTIONS[name], COMMAND_OPTIONS[name].help)),
    describeOption({ name: 'help', alias: 'h', help: [] }, ['this help']),
  ];
  const exits = entry.exits.map(([code, meaning]) => `  ${String(code).padEnd(3)}${meaning}`);
  return [
    `Usage: ${PROGRAM_NAME} ${[...(isHelp ? [] : ['[--conf FILE]']), entry.name, ...flags, operands].join(' ')}`,
    '',
    `${entry.name}: ${entry.summary}`,
    '',
    'Options:',
    ...options,
    '',
    'Exit codes:',
    ...exits,
    '',
  ].join('\n');
}

/** The help of the command named `name`; an unknown name is a usage error listing the commands. */
export function describeCommandNamed(name: string): string {
  const entry = findCommand(name);
  if (entry === undefined) throw new UsageError(`unknown command "${name}"; one of: ${COMMANDS.map((known) => known.name).join(', ')}`);
  return describeCommand(entry);
}

/** `help [COMMAND]`: one command's help, or the whole help without a name. */
export const showHelp: Command = async ({ io, selection }) => {
  const [name, ...extra] = selection;
  if (extra.length > 0) throw new UsageError(`help takes one command name, not ${selection.length}: ${PROGRAM_NAME} help COMMAND`);
  io.stdout(name === undefined ? HELP : describeCommandNamed(name));
  return EXIT_OK;
};
