// PENDING_NAMES: what the man page (docs/php-fpm-multi.8) and the bash completion
// (scripts/php-fpm-multi.bash-completion) already document, from issue 14, while other branches
// add it to the registry and the keys in parallel. The drift tests (test/unit/manpage-drift and
// completion-drift) accept these names in the man page and the completion although
// src/cli/registry.ts and src/model/keys.ts do not have them yet.
//
// LEAD: remove this allow-list (make every list below empty) when the branches that add these are
// merged; then every name must exist in the registry or the keys, and the drift tests say which
// one does not (a name spelt otherwise there: fix the man page and the completion).
export const PENDING_NAMES = {
  /** logs (branch logs), discover (branch discover), help COMMAND. */
  commands: ['logs'],
  /** Option names (long, then the alias letter) with the commands that take them. */
  options: [
    { name: 'lines', alias: 'n', argument: 'LINES', commands: ['logs'] },
    { name: 'follow', alias: 'f', commands: ['logs'] },
  ],
  /** socket_dir_owner, socket_dir_mode (branch sockdirs); user, group (branch users). */
  keys: [],
} as const;
