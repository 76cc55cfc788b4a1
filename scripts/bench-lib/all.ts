// scripts/bench --all: after the three benchmarks (bench.ts, supervisor.ts, lifecycle.ts) have
// written their JSON, this checks the installed controller (scripts/install.sh into a scratch
// DESTDIR: one file, no node_modules, and it runs), writes one JSON with all of it and prints the
// verdict of every target of issue 15, PASS or MISS and by how much.
//
//   node all.js DIR OUT   DIR holds bench.json, supervisor.json, lifecycle.json; OUT is the one JSON
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRoot } from './root.js';

const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' };

interface Target { id: string; description?: string; value: number; limit: number; unit?: string; met: boolean }
interface Verdict { target: string; value: number | string; limit: number | string; unit: string; pass: boolean; by: string }

const readJson = (file: string): Record<string, unknown> | null => (fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>) : null);

function verdict(target: string, value: number, limit: number, unit: string): Verdict {
  const difference = value - limit;
  const percent = limit === 0 ? '' : ` (${difference >= 0 ? '+' : ''}${((difference / limit) * 100).toFixed(0)} %)`;
  const by = value <= limit ? `${(-difference).toFixed(2)} ${unit} to spare${percent}` : `over by ${difference.toFixed(2)} ${unit}${percent}`;
  return { target, value: Math.round(value * 100) / 100, limit: Math.round(limit * 100) / 100, unit, pass: value <= limit, by };
}

/** scripts/install.sh into a scratch DESTDIR: what the controller's directory holds, and whether it runs. */
function installedController(): { files: string[]; controller_files: string[]; node_modules: boolean; runs: boolean; one_file: boolean } {
  const destdir = fs.mkdtempSync('/tmp/php-fpm-multi-bench-install-');
  try {
    const installed = spawnSync('sh', [path.join(ROOT, 'scripts', 'install.sh'), `DESTDIR=${destdir}`], { env: ENV, encoding: 'utf8' });
    if (installed.status !== 0) throw new Error(`scripts/install.sh DESTDIR=${destdir} failed: ${installed.stderr}`);
    const libdir = path.join(destdir, 'usr', 'lib', 'php-fpm-multi');
    const files = fs.readdirSync(libdir).sort();
    // The code cache (.v8-cache) is data V8 may use, not code node loads: the controller is the rest.
    const controllerFiles = files.filter((file) => !file.endsWith('.v8-cache'));
    const runs = spawnSync(process.execPath, [path.join(libdir, controllerFiles[0] ?? 'none'), '--version'], { env: ENV, encoding: 'utf8' }).status === 0;
    const nodeModules = files.includes('node_modules');
    return { files, controller_files: controllerFiles, node_modules: nodeModules, runs, one_file: controllerFiles.length === 1 && !nodeModules && runs && fs.statSync(path.join(libdir, controllerFiles[0]!)).isFile() };
  } finally {
    fs.rmSync(destdir, { recursive: true, force: true });
  }
}

function main(): void {
  const [dir = path.join(ROOT, 'bench-results'), out = path.join(dir, 'all.json')] = process.argv.slice(2);
  const bench = readJson(path.join(dir, 'bench.json'));
  const supervisor = readJson(path.join(dir, 'supervisor.json'));
  const lifecycle = readJson(path.join(dir, 'lifecycle.json'));
  if (bench === null) throw new Error(`${dir}/bench.json is missing: scripts/bench writes it`);
  const targets = new Map(((bench['targets'] ?? []) as Target[]).map((t) => [t.id, t]));
  const verdicts: Verdict[] = [];
  const fromBench = (id: string, label: string): void => {
    const t = targets.get(id);
    if (t === undefined) verdicts.push({ target: label, value: '-', limit: '-', unit: '', pass: false, by: 'not measured (sizes of this run)' });
    else verdicts.push(verdict(label, t.value, t.limit, t.unit ?? ''));
  };
  const n = (id: string, fallback: number): number => (targets.get(id) as { n?: number } | undefined)?.n ?? fallback;
  fromBench('start_vs_baseline', `start ${n('start_vs_baseline', 16)} ≤ 0.5 × per-slot`);
  fromBench('start_vs_floor', `start ${n('start_vs_floor', 16)} ≤ floor + node -e 0`);
  fromBench('stop_vs_baseline', `stop ${n('stop_vs_baseline', 16)} ≤ 0.5 × per-slot`);
  fromBench('stop_vs_floor', `stop ${n('stop_vs_floor', 16)} ≤ floor + node -e 0`);
  fromBench('status_vs_node', `status ${n('status_vs_node', 32)} ≤ 1.25 × node -e 0`);
  fromBench('status_code_cache_vs_node', `status ${n('status_code_cache_vs_node', 32)} as installed (code cache) ≤ 1.25 × node -e 0`);
  for (const command of ['status', 'start', 'stop']) fromBench(`${command}_linear`, `${command} linear to N = ${n(`${command}_linear`, 128)} (≤ 1.25 × prediction)`);
  fromBench('memory', `peak memory at N = ${n('memory', 128)} ≤ 64 MiB`);
  const install = installedController();
  verdicts.push({
    target: 'installed controller is one file', value: install.controller_files.join(', '), limit: '1 file, no node_modules', unit: '',
    pass: install.one_file, by: install.one_file ? `${install.files.join(', ')} in usr/lib/php-fpm-multi/` : `holds ${install.files.join(', ')}${install.runs ? '' : '; does not run'}`,
  });
  for (const t of ((lifecycle?.['targets'] ?? []) as Target[])) verdicts.push(verdict(`lifecycle: ${t.id}`, t.value, t.limit, 'failed'));

  const decomposition = (bench['results'] as Record<string, unknown>)['status_decomposition'] ?? null;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), verdicts, status_decomposition: decomposition, installed: install, bench, supervisor, lifecycle }, null, 2)}\n`);

  const width = Math.max(...verdicts.map((v) => v.target.length));
  const lines = ['', 'verdicts (issue 15):'];
  for (const v of verdicts) lines.push(`  ${v.pass ? 'PASS' : 'MISS'}  ${v.target.padEnd(width)}  ${String(v.value)} ${v.unit} (limit ${String(v.limit)}): ${v.by}`);
  if (decomposition !== null) {
    const d = decomposition as Record<string, number>;
    lines.push('', `status ${d['n']} taken apart (ms): node start ${d['node_start_ms']}, module load ${d['module_load_ms']}, work ${d['work_ms']}; compile time the code cache saves (at load and in the work): ${d['compile_saved_by_code_cache_ms']}`);
  }
  if (supervisor === null) lines.push('', 'supervisor: not measured (no supervisor.json)');
  lines.push('', `written to ${out}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();
