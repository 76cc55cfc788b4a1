// Whole-process views for tests. The controller itself never needs them: it reads a stat-only
// table once per command (listStats) and the full identity of the few processes that match.
import { listStats, readProcess, type ProcessInfo } from '../../src/process/proc.js';
import { readFileSync } from 'node:fs';
import { createRealSystem, type System } from '../../src/process/system.js';

/** Every live (non-zombie) process with its full identity, by pid. */
export async function listProcesses(system: System): Promise<ProcessInfo[]> {
  const stats = await listStats(system);
  const processes = await Promise.all(stats.map((stat) => readProcess(system, stat.pid)));
  return processes.filter((proc): proc is ProcessInfo => proc !== null).sort((a, b) => a.pid - b.pid);
}

export function findChildren(processes: readonly ProcessInfo[], pid: number): ProcessInfo[] {
  return processes.filter((p) => p.ppid === pid);
}

/** Members of a session: a daemonized master leads its own, and its workers (even orphaned) keep it. */
export function findBySession(processes: readonly ProcessInfo[], sessionId: number): ProcessInfo[] {
  return processes.filter((p) => p.sessionId === sessionId);
}

/** A System (the real one by default) that records every signal the controller sends. */
export function recordSignals(base: System = createRealSystem()): { system: System; sent: Array<[number, string]> } {
  const sent: Array<[number, string]> = [];
  return { sent, system: { ...base, kill: (pid, signal) => (sent.push([pid, signal]), base.kill(pid, signal)) } };
}

/** Whether `pid` runs (a zombie does not). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}
