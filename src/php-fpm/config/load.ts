// The IO edge of the php-fpm config parser: the readers that answer its questions (a file's
// text, an include pattern's matches) from the operating system. The controller reads through
// the one System (readFpmConfig), with the environment php-fpm will really have. Every
// file is a regular file of at most FPM_CONFIG_MAX_BYTES (a FIFO would hang the read, /dev/zero
// never end): System's bounded read refuses anything else, and the refusal is handed to the
// parser as a RefusedFileError so that it names the fix.
import { FPM_CONFIG_MAX_BYTES, UnsafeFileError, type System } from '../../process/system.js';
import { globSteps, type DirectoryAnswer, type DirectoryQuestion } from './glob.js';
import { parseFpmConfigAsync } from './parse.js';
import { runStepsAsync } from './steps.js';
import {
  RefusedFileError, type AsyncFpmConfigReader, type FpmCommandLine, type FpmConfig,
} from './types.js';

/** What reading a php-fpm configuration needs of System. */
export type ConfigSystem = Pick<System, 'readFile' | 'readdir' | 'stat' | 'lstat'>;

/** What each php-fpm configuration file may weigh (tests' readers use it too). */
export const CONFIG_FILE_LIMITS = { maxBytes: FPM_CONFIG_MAX_BYTES };

/** System's refusal of a file, as the parser reports it (with its fix). */
export function refusedFile(error: unknown): unknown {
  return error instanceof UnsafeFileError && error.reason !== 'untrusted' ? new RefusedFileError(error.path, error.reason, error.problem, FPM_CONFIG_MAX_BYTES) : error;
}

function unreachable(question: never): never {
  throw new TypeError(`unknown question ${JSON.stringify(question)}`);
}

/** The reader over the one System: the controller's way to read a php-fpm configuration. */
export function systemConfigReader(system: ConfigSystem): AsyncFpmConfigReader {
  const answer = async (question: DirectoryQuestion): Promise<DirectoryAnswer> => {
    switch (question.kind) {
      case 'list': return system.readdir(question.directory);
      case 'stat': return (await system.stat(question.path)).kind;
      case 'lstat': return (await system.lstat(question.path)).kind;
      default: return unreachable(question);
    }
  };
  return {
    readFile: (path) => system.readFile(path, CONFIG_FILE_LIMITS).catch((error: unknown) => Promise.reject(refusedFile(error))),
    glob: (pattern) => runStepsAsync(globSteps(pattern), answer),
  };
}

/**
 * Reads `path` as php-fpm will, through `system`. `commandLine.env` is the environment php-fpm
 * will be started with (src/model/invocation.ts builds it), never the controller's own.
 */
export function readFpmConfig(system: ConfigSystem, path: string, commandLine: FpmCommandLine): Promise<FpmConfig> {
  return parseFpmConfigAsync(path, { ...commandLine, reader: systemConfigReader(system) });
}
