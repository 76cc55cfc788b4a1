// Exit codes follow the LSB init-script conventions that OpenRC also uses, so a runscript can
// pass them straight through and monitoring tools read them the usual way.
export const EXIT_OK = 0;
/** A command failed for at least one instance (each failure is named on stderr). */
export const EXIT_FAILURE = 1;
/** Bad command line: unknown command, option or instance name. */
export const EXIT_USAGE = 2;
/** `status`: no instance is running and none has crashed (LSB "program is not running"). */
export const EXIT_NOT_RUNNING = 3;
/** `status`: the state of at least one instance cannot be determined (LSB "unknown"). */
export const EXIT_UNKNOWN = 4;
/**
 * An action needs root: an ordinary user asked to start or stop what root runs, or to read what
 * only root may read (LSB: 4 is "user had insufficient privilege" for actions, "unknown" for status).
 */
export const EXIT_NEEDS_ROOT = 4;
/** The declaration file is unusable or refused (LSB "program is not configured"). */
export const EXIT_NOT_CONFIGURED = 6;
/** `status`: at least one instance should be running and is not (OpenRC "crashed"). */
export const EXIT_CRASHED = 32;
