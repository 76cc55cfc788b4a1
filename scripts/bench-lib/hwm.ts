// Preloaded with `node --import` into the controller by scripts/bench for its memory figure:
// when the process exits, writes its own peak resident set size (VmHWM of /proc/self/status, in
// KiB) to $BENCH_HWM_FILE. VmHWM is the controller's own high-water mark; unlike ru_maxrss of
// wait4() (what GNU time's %M reports) it never includes the php-fpm children it waited for.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env['BENCH_HWM_FILE'];
if (out) {
  process.on('exit', () => {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    writeFileSync(out, match?.[1] ?? '');
  });
}
