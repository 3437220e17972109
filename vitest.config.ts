import {defineConfig} from 'vitest/config'
import NameSequencer from './test/support/name-sequencer.ts'

// Two projects: `unit` (pure logic and the real config checkers, no lab) and `lab` (integration against real
// Debian hosts in systemd-nspawn; needs root on Linux, skipped with a message otherwise).
export default defineConfig({
  test: {
    disableConsoleIntercept: true,
    reporters: ['default', './test/support/summary-reporter.ts'],
    sequence: {sequencer: NameSequencer},
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts'],
          globalSetup: ['test/lab/global-setup.ts'],
          // One lab per machine: the lab files share its hosts, so they run one at a time, in name order.
          fileParallelism: false,
          sequence: {concurrent: false, sequencer: NameSequencer},
          testTimeout: 600_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
})
