// scripts/bench --quick on the real php8.2-fpm and start-stop-daemon: the JSON has every figure
// the issue asks for, each a positive number, and the ratios are computed from them. No timing is
// asserted (speed targets are measured by scripts/bench and recorded in docs/BENCHMARKS.md, never
// asserted in tests), and the run leaves nothing behind.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, listProcessesUnder, PHP_FPM, requirePrograms } from '../helpers/fpm.js';

const ROOT = join(import.meta.dirname, '..', '..');
const BENCH = join(ROOT, 'scripts', 'bench');
const SEARCH_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function findStartStopDaemon(): string {
  for (const dir of SEARCH_PATH.split(':')) {
    try {
      accessSync(join(dir, 'start-stop-daemon'), constants.X_OK);
      return join(dir, 'start-stop-daemon');
    } catch {
      // not here
    }
  }
  return '/usr/sbin/start-stop-daemon (not found in any $PATH directory)';
}

interface Figure {
  median_ms: number;
  min_ms: number;
  max_ms: number;
  samples_ms: number[];
}

function expectFigure(figure: Figure | undefined, what: string, reps: number): void {
  expect(figure, `${what} is missing`).toBeDefined();
  expect(figure!.samples_ms, `${what}: one sample per repetition`).toHaveLength(reps);
  for (const sample of figure!.samples_ms) expect(sample, `${what}: a sample`).toBeGreaterThan(0);
  expect(figure!.median_ms, `${what}: median`).toBeGreaterThan(0);
  expect(figure!.min_ms).toBeLessThanOrEqual(figure!.median_ms);
  expect(figure!.max_ms).toBeGreaterThanOrEqual(figure!.median_ms);
}

const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;

describe('scripts/bench --quick', () => {
  const out = mkdtempSync(join(tmpdir(), 'php-fpm-multi-bench-test-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('measures status, start, stop, reading and memory side by side, and cleans up', { timeout: 240_000 }, () => {
    // The real programs or nothing: a missing one fails here, loudly.
    requirePrograms(PHP_FPM, findStartStopDaemon(), CLI);
    const json = join(out, 'bench.json');
    // scripts/test has already run scripts/setup (which builds dist/): --no-setup.
    const run = spawnSync(BENCH, ['--quick', '--no-setup', '--json', json], { encoding: 'utf8', timeout: 230_000 });
    expect(run.status, `scripts/bench --quick failed:\n${run.stderr}\n${run.stdout}`).toBe(0);
    expect(run.stdout).toContain('targets:');

    const report = JSON.parse(readFileSync(json, 'utf8'));
    const { reps, sizes } = report.meta;
    expect(reps).toBeGreaterThanOrEqual(5);
    expect(report.meta.warm_up).toBe(1);
    expect(sizes.length).toBeGreaterThanOrEqual(2);
    for (const key of ['nproc', 'cpu_model', 'memory_mib', 'kernel', 'node', 'php_fpm', 'start_stop_daemon']) {
      expect(report.machine[key], `machine.${key}`).toBeTruthy();
    }

    for (const command of ['status', 'start', 'stop']) {
      for (const n of sizes) {
        for (const method of ['controller', 'baseline', 'floor']) expectFigure(report.results[command][n]?.[method], `${command} N=${n} ${method}`, reps);
      }
    }
    for (const n of sizes) expectFigure(report.results.node_e0[n], `node -e 0 N=${n}`, 2 * reps);
    for (const method of ['controller', 'floor', 'sh_source']) expectFigure(report.results.reading[method], `reading ${method}`, reps);
    expect(report.results.reading.instances).toBe(1000);

    // Ratios are computed from the medians of the same run.
    for (const n of sizes) {
      const status = report.results.status[n];
      expect(report.ratios.status[n].controller_vs_node).toBeCloseTo(ratio(status.controller.median_ms, status.floor.median_ms), 2);
      expect(report.ratios.status[n].controller_vs_baseline).toBeCloseTo(ratio(status.controller.median_ms, status.baseline.median_ms), 2);
      for (const command of ['start', 'stop']) {
        const r = report.results[command][n];
        expect(report.ratios[command][n].controller_vs_baseline).toBeCloseTo(ratio(r.controller.median_ms, r.baseline.median_ms), 2);
        expect(report.ratios[command][n].controller_vs_floor).toBeCloseTo(ratio(r.controller.median_ms, r.floor.median_ms), 2);
      }
    }

    // Linearity: a slope per command and method.
    for (const command of ['status', 'start', 'stop']) {
      for (const method of ['controller', 'baseline', 'floor']) {
        expect(Number.isFinite(report.linearity[command][method].slope_ms_per_instance), `${command} ${method} slope`).toBe(true);
      }
    }

    // Peak memory of the controller itself (VmHWM), in KiB, at the largest N.
    const memory = report.memory;
    expect(memory.instances).toBe(Math.max(...sizes));
    for (const key of ['start_kib', 'status_kib', 'stop_kib', 'list_1000_kib', 'peak_kib', 'node_e0_kib']) {
      expect(memory[key], `memory.${key}`).toBeGreaterThan(0);
    }
    expect(memory.peak_kib).toBe(Math.max(memory.start_kib, memory.status_kib, memory.stop_kib));

    // Status taken apart at the status target's size (the largest of a --quick run): every part
    // measured, and the derived figures follow from the medians.
    const parts = report.results.status_decomposition;
    expect(parts.n).toBe(Math.max(...sizes));
    for (const key of ['node_e0', 'version', 'status', 'status_code_cache']) expect(parts[key].median_ms, key).toBeGreaterThan(0);
    expect(parts.module_load_ms).toBeCloseTo(parts.version.median_ms - parts.node_e0.median_ms, 1);
    expect(parts.work_ms).toBeCloseTo(parts.status.median_ms - parts.version.median_ms, 1);
    expect(parts.compile_saved_by_code_cache_ms).toBeCloseTo(parts.status.median_ms - parts.status_code_cache.median_ms, 1);
    expect(run.stdout).toContain(`status of ${parts.n} taken apart`);

    // Every target is evaluated (met or not: speed is never asserted here).
    const ids = report.targets.map((t: { id: string }) => t.id);
    for (const id of ['status_vs_node', 'status_code_cache_vs_node', 'start_vs_baseline', 'start_vs_floor', 'stop_vs_baseline', 'stop_vs_floor', 'memory']) expect(ids).toContain(id);
    for (const t of report.targets) {
      expect(t.value, t.id).toBeGreaterThan(0);
      expect(t.limit, t.id).toBeGreaterThan(0);
      expect(typeof t.met).toBe('boolean');
      expect(t.met).toBe(t.value <= t.limit);
    }

    // Nothing left behind: the scratch directory is gone and no php-fpm of it runs.
    const scratch = /scratch directory (\S+);/.exec(run.stderr)?.[1];
    expect(scratch, 'the bench names its scratch directory').toBeDefined();
    expect(existsSync(scratch!), `${scratch} was not removed`).toBe(false);
    expect(listProcessesUnder(scratch!)).toEqual([]);
  });
});
