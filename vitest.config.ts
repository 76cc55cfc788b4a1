import { defineConfig } from 'vitest/config';

// Two projects, chosen by what a test needs (README, "Development"):
// - unit: the pure core and the System seam (fakes, or scratch files and child processes of its
//   own under /tmp). Any user, no package beyond node_modules, no build: `scripts/test-unit`.
// - integration: real php-fpm, bash, OpenRC, cgi-fcgi, promtool, root, or the built dist/.
// `scripts/test` runs both, unit first.
export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    retry: 0,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // Nothing here shares state outside its own scratch directory: files run in parallel,
          // in worker threads (a third faster to start than forked processes; nothing here needs
          // a process of its own: no chdir, umask or uid changes).
          fileParallelism: true,
          pool: 'threads',
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // These start real php-fpm masters and OpenRC services; they share /run and /etc and
          // must not race each other for them, so files run one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
