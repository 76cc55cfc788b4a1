// Everything a read-only process-control command (status, health, status --pools) needs before
// it looks at a process, in one call (prepareTargets): the declaration (src/process/declaration.ts),
// its run directory's records, the targets chosen (src/process/choice.ts), and those of its
// previous run directory (src/process/previous-run-dir.ts).
import type { CommandContext } from '../cli/command.js';
import { trustRunDirectory } from './run-directory.js';
import type { Target } from './target.js';
import type { System } from './system.js';
import { checkSelection, chooseTargets, type Chosen, type TargetChoice } from './choice.js';
import {
  holdsControllerState, loadDeclaration, namesIn, readRunDirectoryRecords, resolveDeclarationFile, runDeclaredPreflight, type Requirement,
} from './declaration.js';
import { choosePreviousTargets, readPreviousRunDir, withoutShadowed, type PreviousRunDir } from './previous-run-dir.js';

export interface Prepared extends Chosen {
  /** The declaration file's real path (what its records name); left out by callers that do not read records. */
  file?: string;
  /**
   * stop and status: the records of this file in its previous run directory (the one its last start
   * used, when the file is unusable or FPM_run_dir changed), acted on there; null when none.
   */
  previous?: (PreviousRunDir & { targets: Target[] }) | null;
  /**
   * Whether a run directory of this file (its own, or its previous one) was ever used: it holds
   * the controller's lock or a record. With an unusable file and nothing used, what runs cannot
   * be told; with a used one whose records are gone, its instances were stopped.
   */
  used?: boolean;
}

/**
 * Reads what a read-only command (status, health, status --pools) needs: the declaration, the
 * run directory's trust (before anything in it is read), its records, and the targets.
 */
export async function prepareTargets(system: System, context: CommandContext, choice: TargetChoice, requirement: Requirement): Promise<Prepared> {
  const declared = loadDeclaration(context, requirement);
  checkSelection(declared, choice, context.selection);
  const preflight = await runDeclaredPreflight(system, declared, context.selection, requirement, context.io.env['PATH']);
  const file = await resolveDeclarationFile(system, declared.conf);
  const exists = await trustRunDirectory(system, declared.runDir, false);
  const read = exists ? await readRunDirectoryRecords(system, declared.runDir, file) : { records: [], problems: [] };
  if (requirement !== 'records') return { ...chooseTargets(declared, read, context.selection, choice, preflight), file, previous: null };
  const found = await readPreviousRunDir(system, context, declared, file);
  const prepared = chooseTargets(declared, read, context.selection, choice, preflight, found === null ? [] : namesIn(found.read));
  const used = (exists && (await holdsControllerState(system, declared.runDir))) || found?.used === true;
  if (found === null) return { ...prepared, file, previous: null, used };
  const targets = choosePreviousTargets(declared, found.previous, found.read, context.selection, choice, namesIn(read));
  return {
    ...prepared, file, targets: withoutShadowed(prepared.targets, targets), recordProblems: [...prepared.recordProblems, ...found.problems],
    previous: { ...found.previous, targets }, used,
  };
}
