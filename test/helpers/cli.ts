import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli.js';
import { createRealSystem, type System } from '../../src/process/system.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in-process with captured output, over `system` (default: the real one). */
export async function runCli(argv: string[], env: Record<string, string | undefined> = {}, system: System = createRealSystem()): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: (text) => void (stdout += text),
    stderr: (text) => void (stderr += text),
    env: { PATH: process.env['PATH'], ...env },
    system,
  });
  return { code, stdout, stderr };
}

/** A scratch directory removed by the returned cleanup. */
export function makeScratchDir(prefix = 'php-fpm-multi-test-'): { dir: string; write(name: string, text: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    write(name, text) {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
