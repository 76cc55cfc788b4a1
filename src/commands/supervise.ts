// supervise: a long-running foreground process that keeps every selected enabled instance running
// (src/supervisor/supervisor.ts). Signals come from the process: SIGTERM and SIGINT stop every
// supervised instance and return 0, SIGHUP re-reads the declaration.
import type { CommandContext } from '../cli/command.js';
import { runSupervisor, type SignalSource } from '../supervisor/supervisor.js';

const processSignals: SignalSource = {
  on: (signal, listener) => void process.on(signal, listener),
  off: (signal, listener) => void process.off(signal, listener),
};

export async function supervise(context: CommandContext): Promise<number> {
  const system = context.io.system;
  return runSupervisor({ io: context.io, system, conf: context.conf, selection: context.selection, signals: processSignals });
}
