// How php-fpm-multi speaks on stderr, in one place: every line starts with the program's name;
// warnings say so; counts agree with their nouns. Commands report through these helpers rather
// than spelling the prefix themselves. (Error causes, the errno words, are src/errors.ts's
// describeErrno: the process layer needs them too.)

import type { Io } from './command.js';

export const PROGRAM_NAME = 'php-fpm-multi';

/** `php-fpm-multi: <message>` and a line feed: every line the controller writes about itself. */
export function formatLine(message: string): string {
  return `${PROGRAM_NAME}: ${message}\n`;
}

/** formatLine on stderr: a refusal or a failure the exit code goes with. */
export function reportError(io: Pick<Io, 'stderr'>, message: string): void {
  io.stderr(formatLine(message));
}

/** `php-fpm-multi: warning: <message>` on stderr: something noticed that does not change the outcome. */
export function reportWarning(io: Pick<Io, 'stderr'>, message: string): void {
  io.stderr(formatLine(`warning: ${message}`));
}

/** `1 instance`, `2 instances`; `plural` for nouns that do not just take an s. */
export function countOf(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}
