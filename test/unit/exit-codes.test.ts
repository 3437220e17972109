import {describe, expect, test} from 'vitest'
import {failIfNeeded} from '../../src/cli/session.js'
import type {Summary} from '../../src/cli/plan-output.js'
import {exitCodeOf} from '../../src/util/errors.js'

const summary = (counts: Partial<Summary>, failedHosts: Record<string, string> = {}): Summary => ({
  ok: 0,
  changed: 0,
  pending: 0,
  failed: 0,
  skipped: 0,
  changes: 0,
  durationMs: 0,
  failedHosts,
  ...counts,
})

function codeOf(s: Summary, total: number): number {
  try {
    failIfNeeded(s, total)
    return 0
  } catch (error) {
    return exitCodeOf(error)
  }
}

describe('exit codes of a run (README "Exit codes")', () => {
  test('0 when every host succeeded', () => {
    expect(codeOf(summary({ok: 1, changed: 2}), 3)).toBe(0)
  })

  test('1 when no selected host succeeded: a skipped host has not succeeded either (was 3)', () => {
    const s = summary({failed: 2, skipped: 1}, {web1: 'nginx unhealthy', web2: 'not run: the roll stopped at web1', lb1: 'x'})
    expect(codeOf(s, 3)).toBe(1)
    expect(() => failIfNeeded(s, 3)).toThrow(/^no host succeeded \(2 failed, 1 skipped\)$/)
  })

  test('3 when some succeeded and some failed or were skipped', () => {
    expect(codeOf(summary({changed: 1, failed: 1}, {web2: 'x'}), 2)).toBe(3)
    expect(codeOf(summary({ok: 1, skipped: 1}, {web2: 'x'}), 2)).toBe(3)
  })
})
