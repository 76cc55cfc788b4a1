#!/usr/bin/env node
// The entry point, and nothing else: builds the one System and the Io every command receives,
// runs src/cli/main.ts and hands its exit code to the process. Importing this module (tests do)
// runs nothing; `main` is re-exported for them.

import { realpathSync } from 'node:fs';
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
  const stderr = ignoreOutputErrors(process.stderr);
  let io: Io | undefined;
  try {
    io = {
      stdout: ignoreOutputErrors(process.stdout), stderr, env: process.env, system: createRealSystem(),
      terminal: { stdout: process.stdout.isTTY === true, stderr: process.stderr.isTTY === true },
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
