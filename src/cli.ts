#!/usr/bin/env node
// The entry point, and nothing else: builds the one System and the Io every command receives,
// runs src/cli/main.ts and hands its exit code to the process. Importing this module (tests do)
// runs nothing; `main` is re-exported for them.

import { realpathSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Io } from './cli/command.js';
import { main } from './cli/main.js';
import { reportError } from './cli/reporter.js';
import { createRealSystem } from './process/system.js';

export { main } from './cli/main.js';

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
 * masters: every error is dropped.
 *
 * Written with writeSync on the descriptor rather than through process.stdout/stderr: creating
 * those streams loads node:stream (and node:net for a pipe), ~4-7 ms of every command's start-up,
 * and a command's output is a few lines. Only a descriptor the parent left non-blocking
 * (EAGAIN: a pipe shared with a reader that is behind) falls back to the stream, which queues.
 */
function writeToDescriptor(fd: 1 | 2): (text: string) => void {
  let stream: NodeJS.WriteStream | undefined;
  const viaStream = (text: string): void => {
    if (stream === undefined) {
      stream = fd === 1 ? process.stdout : process.stderr;
      stream.on('error', () => undefined);
    }
    try {
      stream.write(text);
    } catch {
      // the text is lost; the command goes on
    }
  };
  return (text) => {
    if (stream !== undefined) {
      viaStream(text);
      return;
    }
    const bytes = Buffer.from(text, 'utf8');
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(fd, bytes, written);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') viaStream(bytes.subarray(written).toString('utf8'));
      // any other error: the text is lost; the command goes on
    }
  };
}

/**
 * Whether stdout and stderr are terminals, asked only when read: only the openrc style's colours
 * need it, and node:tty loads node:net and node:stream (~5 ms of every start-up).
 */
function askTerminal(): { readonly stdout: boolean; readonly stderr: boolean } {
  let tty: typeof import('node:tty') | undefined;
  const isTerminal = (fd: number): boolean => {
    tty ??= createRequire(import.meta.url)('node:tty') as typeof import('node:tty');
    return tty.isatty(fd);
  };
  return {
    get stdout() {
      return isTerminal(1);
    },
    get stderr() {
      return isTerminal(2);
    },
  };
}

if (isEntryPoint()) {
  const stderr = writeToDescriptor(2);
  let io: Io | undefined;
  try {
    io = {
      stdout: writeToDescriptor(1), stderr, env: process.env, system: createRealSystem(),
      terminal: askTerminal(),
    };
  } catch (error) {
    // Only when /proc or getuid() is missing: php-fpm-multi runs on Linux only.
    reportError({ stderr }, error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
  // No top-level await: the build (scripts/build.mjs) bundles this into one CommonJS file, which
  // starts faster than ESM, and CommonJS has none.
  if (io !== undefined) {
    void main(process.argv.slice(2), io).then((code) => {
      process.exitCode = code;
    });
  }
}
