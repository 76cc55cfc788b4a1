// Discovery: the php-fpm slots a machine has installed with its distribution's default config
// (Debian/Ubuntu, Gentoo, Alpine, Remi's collections), and the declaration that runs each of
// them, commented with what was found and the fix a `pid =` line needs. Pure: the directory
// listings come from the caller, and what was found on the machine is handed to the formatter.
import { formatStringForm, quoteWordForDisplay } from '../declaration/string-form.js';
import { resolveSlot, type SlotVersion } from './slot.js';

export type Distribution = 'debian' | 'gentoo' | 'alpine' | 'remi';

export const DISTRIBUTION_NAMES: Readonly<Record<Distribution, string>> = {
  debian: 'Debian/Ubuntu',
  gentoo: 'Gentoo',
  alpine: 'Alpine',
  remi: "Remi's collection",
};

/** A distribution's default php-fpm config of one version, and where that layout puts its php-fpm. */
export interface DiscoveryCandidate {
  distribution: Distribution;
  /** The version the layout names; null where it names the major version only (Alpine's php7, php8). */
  version: SlotVersion | null;
  /** `php8.2`, or `php8` without a minor version. */
  label: string;
  config: string;
  /** Where the layout installs the php-fpm of that config, in the order tried. */
  binaries: string[];
}

/**
 * Every default config a distribution layout could hold under `eprefix` (Gentoo Prefix; '' on
 * an ordinary system), from the names in its directories: `listDirectory` answers [] for a
 * directory that cannot be listed. Whether the config and the binary exist is the caller's to ask.
 */
export function listDiscoveryCandidates(eprefix: string, listDirectory: (dir: string) => string[]): DiscoveryCandidate[] {
  const candidates: DiscoveryCandidate[] = [];
  const sorted = (dir: string): string[] => [...listDirectory(`${eprefix}${dir}`)].sort(compareNames);
  for (const name of sorted('/etc/php')) {
    const debian = /^(\d{1,2})\.(\d{1,2})$/.exec(name);
    if (debian !== null) {
      candidates.push({
        distribution: 'debian', version: { major: debian[1]!, minor: debian[2]! }, label: `php${name}`,
        config: `${eprefix}/etc/php/${name}/fpm/php-fpm.conf`, binaries: [`${eprefix}/usr/sbin/php-fpm${name}`],
      });
    }
    const gentoo = /^fpm-php((\d{1,2})\.(\d{1,2}))$/.exec(name);
    if (gentoo !== null) {
      const dotted = gentoo[1]!;
      candidates.push({
        distribution: 'gentoo', version: { major: gentoo[2]!, minor: gentoo[3]! }, label: `php${dotted}`,
        config: `${eprefix}/etc/php/${name}/php-fpm.conf`,
        binaries: [`${eprefix}/usr/lib64/php${dotted}/bin/php-fpm`, `${eprefix}/usr/lib/php${dotted}/bin/php-fpm`],
      });
    }
  }
  for (const name of sorted('/etc')) {
    // php82 (8.2), php83; php7 and php8 in older releases name the major version only.
    const alpine = /^php(\d)(\d{1,2})?$/.exec(name);
    if (alpine === null) continue;
    const version = alpine[2] === undefined ? null : { major: alpine[1]!, minor: alpine[2] };
    const joined = name.slice('php'.length);
    candidates.push({
      distribution: 'alpine', version, label: version === null ? name : `php${version.major}.${version.minor}`,
      config: `${eprefix}/etc/${name}/php-fpm.conf`, binaries: [`${eprefix}/usr/sbin/php-fpm${joined}`],
    });
  }
  for (const name of sorted('/etc/opt/remi')) {
    const remi = /^php(\d)(\d{1,2})$/.exec(name);
    if (remi === null) continue;
    candidates.push({
      distribution: 'remi', version: { major: remi[1]!, minor: remi[2]! }, label: `php${remi[1]}.${remi[2]}`,
      config: `${eprefix}/etc/opt/remi/${name}/php-fpm.conf`, binaries: [`${eprefix}/opt/remi/${name}/root/usr/sbin/php-fpm`],
    });
  }
  return candidates;
}

/** Version order for names holding numbers (`7.4` before `8.2` before `8.10`), else by text. */
function compareNames(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/**
 * The words that select the binary found with a config: `slot=php8.2` when slot resolution (the
 * same as the declaration's, src/model/slot.ts) reaches exactly that binary, else `binary=` (a
 * machine with two layouts of one version, or a version without its minor).
 */
export function chooseBinaryWord(candidate: DiscoveryCandidate, binary: string, eprefix: string, isExecutable: (file: string) => boolean): string {
  if (candidate.version === null) return `binary=${binary}`;
  const resolved = resolveSlot(candidate.version, { eprefix, pathDirs: [] }, isExecutable);
  return resolved.binary === binary ? `slot=${candidate.label}` : `binary=${binary}`;
}

/** A pool as found in a discovered config. */
export interface DiscoveredPool {
  name: string;
  /** The listen address; null when the pool sets none (php-fpm refuses it). */
  listen: string | null;
  statusListen: string | null;
  /** `file:line` of its `listen` line; null when unknown. */
  at: string | null;
}

/** A `pid =` line: php-fpm uses it instead of the controller's --pid, so check and start refuse it. */
export interface PidLine {
  file: string;
  line: number;
  pid: string;
}

/** One declared instance and what was found about it. */
export interface DiscoveredInstance {
  name: string;
  candidate: DiscoveryCandidate;
  binary: string;
  /** The declaration's words: the slot (or binary) and the config. */
  words: string[];
  /** The first line of `<binary> -v`, or why it could not be had. */
  version: { kind: 'said'; line: string } | { kind: 'failed'; why: string };
  /** The pools; empty with a `configProblem`. */
  pools: DiscoveredPool[];
  configProblem: string | null;
  pidLine: PidLine | null;
  /** Directories of unix listen sockets that do not exist (check and start refuse them). */
  missingSocketDirs: string[];
}

export type DeclarationForm = 'string' | 'array';

export interface DiscoveryReport {
  instances: DiscoveredInstance[];
  /** Configs of a layout whose php-fpm is missing, installed php-fpm without a config: comments, not declared. */
  notes: string[];
  form: DeclarationForm;
  /** Why this form: which /bin/sh OpenRC sources the file with, or the option. */
  formReason: string;
}

/** Variable names of the instances: `php82`, and a distribution suffix when two layouts hold one version. */
export function nameInstances(candidates: readonly DiscoveryCandidate[]): string[] {
  const taken = new Set<string>();
  return candidates.map((candidate) => {
    const base = candidate.label.replace(/[^A-Za-z0-9]/g, '');
    let name = taken.has(base) ? `${base}_${candidate.distribution}` : base;
    for (let n = 2; taken.has(name); n += 1) name = `${base}_${candidate.distribution}${n}`;
    taken.add(name);
    return name;
  });
}

/**
 * The command that comments the `pid =` line out (`;` starts a php-fpm INI comment). It edits
 * exactly that line, and only while it still is a `pid =` line: a file changed since leaves it alone.
 */
export function formatPidFix(pidLine: PidLine): string {
  return `sed -i '${pidLine.line}s/^[[:space:]]*pid[[:space:]]*=/;&/' ${quoteWordForDisplay(pidLine.file)}`;
}

/** The prefix of the comment line that holds a fix to run: scripts and the README find them by it. */
export const FIX_PREFIX = '#   fix: ';

function formatVariable(name: string, words: readonly string[], form: DeclarationForm): string {
  const variable = `FPM_slot_${name}`;
  return form === 'string' ? formatStringForm(variable, words) : `${variable}=( ${words.map(quoteWordForDisplay).join(' ')} )`;
}

function describeInstance(instance: DiscoveredInstance): string[] {
  const { candidate } = instance;
  const lines = [`# ${candidate.label} (${DISTRIBUTION_NAMES[candidate.distribution]}): ${instance.binary}`];
  lines.push(instance.version.kind === 'said' ? `#   version: ${instance.version.line}` : `#   version: unknown (${instance.version.why})`);
  lines.push(`#   config: ${candidate.config}`);
  if (instance.configProblem !== null) lines.push(`#   the config cannot be read as php-fpm reads it: ${instance.configProblem}`);
  else if (instance.pools.length === 0) lines.push('#   pools: none (php-fpm refuses a config without a pool)');
  for (const pool of instance.pools) {
    const listen = pool.listen === null ? 'no listen address (php-fpm refuses the pool)' : `listen ${pool.listen}`;
    const status = pool.statusListen === null ? '' : `, pm.status_listen ${pool.statusListen}`;
    lines.push(`#   pool ${pool.name}: ${listen}${status}${pool.at === null ? '' : ` (${pool.at})`}`);
  }
  if (instance.pidLine === null) {
    lines.push('#   pid: no "pid =" line: nothing to fix');
  } else {
    const { file, line, pid } = instance.pidLine;
    lines.push(
      `#   pid: ${file}:${line} sets "pid = ${pid}", which php-fpm would use instead of php-fpm-multi's --pid: check and start refuse it until the line is commented out:`,
      `${FIX_PREFIX}${formatPidFix(instance.pidLine)}`,
    );
  }
  for (const dir of instance.missingSocketDirs) {
    // start creates a missing socket directory (root 0755, or socket_dir_owner/socket_dir_mode):
    // nothing to fix by hand, but an admin who expects www-data to own it (Debian) should know why not.
    lines.push(`#   ${quoteWordForDisplay(dir)} (a listen socket's directory) does not exist: start creates it, root-owned 0755 (keep it root's: the pool's listen.owner, listen.group and listen.mode give the web server the socket)`);
  }
  return lines;
}

/** The declaration file discover prints: every instance commented with what was found, and its fixes. */
export function formatDiscovery(report: DiscoveryReport): string {
  const lines = [
    '# php-fpm-multi declaration, written by `php-fpm-multi discover`: each php-fpm installed here',
    "# with its distribution's default config. Run every \"fix:\" line below, then php-fpm-multi check.",
    `# ${report.formReason}`,
  ];
  if (report.instances.length === 0) lines.push('', '# No php-fpm with its default config was found: nothing is declared.');
  for (const instance of report.instances) {
    lines.push('', ...describeInstance(instance), formatVariable(instance.name, instance.words, report.form));
  }
  if (report.notes.length > 0) lines.push('', ...report.notes.map((note) => `# not declared: ${note}`));
  // A comment ends at its line: a control character found in a name or a version must not end it.
  return `${lines.map((line) => (line.startsWith('#') ? line.replace(/[\x00-\x1f\x7f]/g, '?') : line)).join('\n')}\n`;
}
