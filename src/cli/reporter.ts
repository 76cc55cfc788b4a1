// How php-fpm-multi speaks, in one place. Every line has a severity the command chooses (info,
// warning, error) and is written in one of two styles:
// - plain (the default): `php-fpm-multi: <message>`, warnings say so; info on stdout, warnings
//   and errors on stderr;
// - openrc (`--style openrc`, what the runscript passes): the lines of OpenRC's libeinfo, as
//   einfo/ewarn/eerror print them: ` * <message>`, the star green, yellow or red on a colour
//   terminal; einfo on stdout, ewarn and eerror on stderr; EINFO_QUIET (rc-service -q) drops
//   info and warnings, EERROR_QUIET (rc-service -qq) errors too, EINFO_INDENT indents, EINFO_COLOR=NO / RC_NOCOLOR=yes / TERM=dumb / no terminal: no colour.
//   The runscript calls the controller right after `ebegin`. On a colour terminal ebegin ends its
//   line and eend moves back up to the last one. Elsewhere (a log, TERM=dumb, EINFO_COLOR=NO)
//   ebegin leaves its line open and OpenRC exports EINFO_LASTCMD=ebegin: then each line starts
//   with a line feed, as libeinfo's einfo does after an ebegin, so that nothing is glued to
//   "Starting … ...", and the last line is left open as ebegin's was, for the runscript's eend
//   to end with " [ ok ]" or to start its error message on a line of its own.
// `--quiet` (start, stop, restart, reload) drops info and warnings too: only failures are printed.
// Commands report through these helpers rather than writing prefixes themselves. (Error causes,
// the errno words, are src/errors.ts's describeErrno: the process layer needs them too.)

import type { Io } from './command.js';

export const PROGRAM_NAME = 'php-fpm-multi';

export const OUTPUT_STYLES = ['plain', 'openrc'] as const;
export type OutputStyle = (typeof OUTPUT_STYLES)[number];
export type Severity = 'info' | 'warning' | 'error';

/** How lines are written: chosen once per run by src/cli/main.ts (chooseReporting). */
export interface Reporting {
  style: OutputStyle;
  /** Only errors are written (--quiet; EINFO_QUIET under the openrc style). */
  quiet: boolean;
  /** Not even errors (EERROR_QUIET under the openrc style); the exit code says it all. */
  silent: boolean;
  /** Whether each stream gets libeinfo's colours (openrc style on a colour terminal). */
  colour: { stdout: boolean; stderr: boolean };
  /** Spaces after the star (EINFO_INDENT, at most 40 as in libeinfo). */
  indent: number;
  /**
   * This run continues an open `ebegin` line (openrc style, no colour terminal): every line
   * starts with a line feed and the last one is left open for eend.
   */
  afterEbegin: boolean;
  /** A line is open (ebegin's, or the last one written after it): the next output starts with a line feed. */
  openLine: boolean;
}

export const PLAIN_REPORTING: Readonly<Reporting> = { style: 'plain', quiet: false, silent: false, colour: { stdout: false, stderr: false }, indent: 0, afterEbegin: false, openLine: false };

/** libeinfo's colours (bold, then the colour), and its reset and clear-to-end-of-line. */
const STAR_COLOURS: Readonly<Record<Severity, string>> = { info: '\u001b[1m\u001b[32m', warning: '\u001b[1m\u001b[33m', error: '\u001b[1m\u001b[31m' };
const NORMAL = '\u001b[m';
const CLEAR_TO_END = '\u001b[K';
const MAX_INDENT = 40;

/** OpenRC's yesno(): yes, y, true, on, 1 (any case). */
function isYes(value: string | undefined): boolean {
  return value !== undefined && /^(yes|y|true|on|1)$/i.test(value);
}

function isNo(value: string | undefined): boolean {
  return value !== undefined && /^(no|n|false|off|0)$/i.test(value);
}

/**
 * The reporting of one run: the style and --quiet from the command line, the rest from the
 * environment OpenRC passes (EINFO_QUIET, EERROR_QUIET, EINFO_COLOR, RC_NOCOLOR, TERM, EINFO_INDENT,
 * EINFO_LASTCMD) and whether each stream is a terminal.
 */
export function chooseReporting(
  style: OutputStyle, quiet: boolean, env: Readonly<Record<string, string | undefined>>, terminal: { stdout: boolean; stderr: boolean },
): Reporting {
  if (style === 'plain') return { ...PLAIN_REPORTING, quiet };
  const term = env['TERM'];
  const colourAllowed = !isNo(env['EINFO_COLOR']) && !isYes(env['RC_NOCOLOR']) && term !== undefined && term !== '' && term !== 'dumb';
  const colour = { stdout: colourAllowed && terminal.stdout, stderr: colourAllowed && terminal.stderr };
  const indent = Math.min(MAX_INDENT, Math.max(0, Number.parseInt(env['EINFO_INDENT'] ?? '0', 10) || 0));
  // On a colour terminal ebegin ends its line itself (and eend moves back up to the last line).
  // Under EINFO_QUIET (rc-service -q) ebegin and eend print nothing: no line is open.
  const quietOpenRc = isYes(env['EINFO_QUIET']);
  const afterEbegin = env['EINFO_LASTCMD'] === 'ebegin' && !colour.stdout && !quietOpenRc;
  return { style, quiet: quiet || quietOpenRc, silent: isYes(env['EERROR_QUIET']), colour, indent, afterEbegin, openLine: afterEbegin };
}

/** One line (or several: each after the first is indented under the message) in the openrc style. */
export function formatOpenRcLine(severity: Severity, message: string, colour: boolean, indent: number): string {
  const star = colour ? `${STAR_COLOURS[severity]}*${NORMAL}` : '*';
  const pad = ' '.repeat(indent);
  const [first = '', ...rest] = message.split('\n');
  const end = colour ? CLEAR_TO_END : '';
  return [` ${star} ${pad}${first}${end}`, ...rest.map((line) => `   ${pad}${line}${end}`)].join('\n') + '\n';
}

/** Where lines go: stderr always; stdout for info (without it, info goes to stderr too). */
export type Output = Pick<Io, 'stderr'> & Partial<Pick<Io, 'stdout' | 'reporting'>>;

/** `php-fpm-multi: <message>` and a line feed: every line the controller writes about itself. */
export function formatLine(message: string): string {
  return `${PROGRAM_NAME}: ${message}\n`;
}

/**
 * Writes one line of a severity: info on stdout, warnings and errors on stderr. `plainText` is
 * the line in the plain style (exactly as given); the openrc style writes `message` after its star.
 */
function emit(io: Output, severity: Severity, message: string, plainText: string): void {
  const reporting: Reporting = io.reporting ?? { ...PLAIN_REPORTING };
  if (reporting.silent || (reporting.quiet && severity !== 'error')) return;
  const stream = severity === 'info' && io.stdout !== undefined ? 'stdout' : 'stderr';
  const write = stream === 'stdout' && io.stdout !== undefined ? io.stdout : io.stderr;
  if (reporting.style === 'plain') {
    write(plainText);
    return;
  }
  const line = formatOpenRcLine(severity, message, reporting.colour[stream], reporting.indent);
  if (!reporting.afterEbegin) {
    write(line);
    return;
  }
  write(`${reporting.openLine ? '\n' : ''}${line.slice(0, -1)}`);
  reporting.openLine = true;
}

/**
 * Text a command lays out itself (status's table, --json): as given, after a line feed when a
 * line is open (see Reporting.afterEbegin). The text ends with its own line feed.
 */
export function writeText(io: Pick<Io, 'stdout' | 'reporting'>, text: string): void {
  const reporting = io.reporting;
  if (reporting !== undefined && reporting.openLine) {
    reporting.openLine = false;
    io.stdout(`\n${text}`);
    return;
  }
  io.stdout(text);
}

/** A refusal or a failure the exit code goes with: `php-fpm-multi: <message>` on stderr (eerror). */
export function reportError(io: Output, message: string): void {
  emit(io, 'error', message, formatLine(message));
}

/** `php-fpm-multi: warning: <message>` on stderr (ewarn): something noticed that does not change the outcome. */
export function reportWarning(io: Output, message: string): void {
  emit(io, 'warning', `warning: ${message}`, formatLine(`warning: ${message}`));
}

/** `php-fpm-multi: <message>` on stdout (einfo): what was done. */
export function reportInfo(io: Output, message: string): void {
  emit(io, 'info', message, formatLine(message));
}

/**
 * A line a command words itself (check's `<file>: …` lines): as given in the plain style, after
 * the star in the openrc style. Info goes to stdout, the rest to stderr.
 */
export function reportLine(io: Output, severity: Severity, line: string): void {
  emit(io, severity, line, `${line}\n`);
}

/** `1 instance`, `2 instances`; `plural` for nouns that do not just take an s. */
export function countOf(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}
