/*
 * The lab's apt cache serves its archive indexes without asking the mirror while they are under a week old
 * (src/lab/services.ts): which runs freeze them, and which cached paths the pattern handed to apt-cacher-ng covers.
 */
import {describe, expect, test} from 'vitest'
import {APT_INDEXES, aptIndexesFrozen, FROZEN_INDEX_PATTERN} from '../../src/lab/services.js'

const now = new Date('2026-12-02T10:00:00Z')
const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000)

describe('aptIndexesFrozen', () => {
  test('every suite cached within the week: served as cached', () => {
    expect(aptIndexesFrozen([daysAgo(0.1), daysAgo(3), daysAgo(6.9)], now)).toBe(true)
  })
  test('one suite older than a week, or not cached (a first run): asked of the mirror', () => {
    expect(aptIndexesFrozen([daysAgo(0.1), daysAgo(7.1), daysAgo(1)], now)).toBe(false)
    expect(aptIndexesFrozen([daysAgo(0.1), undefined, daysAgo(1)], now)).toBe(false)
    expect(aptIndexesFrozen([], now)).toBe(false)
  })
  test('the three suites of the hosts’ sources', () => {
    expect(APT_INDEXES).toEqual([
      'debrep/dists/bookworm/InRelease',
      'debrep/dists/bookworm-updates/InRelease',
      'secdeb/dists/bookworm-security/InRelease',
    ])
  })
})

describe('FROZEN_INDEX_PATTERN (an extended regex apt-cacher-ng matches against the cached path)', () => {
  const re = new RegExp(FROZEN_INDEX_PATTERN)
  test('the signed indexes of each suite', () => {
    for (const p of [...APT_INDEXES, 'debrep/dists/bookworm/Release', 'debrep/dists/bookworm/Release.gpg']) expect(p).toMatch(re)
  })
  test('not the files they name (by-hash: static already), nor packages, nor look-alikes', () => {
    for (const p of [
      'debrep/dists/bookworm/main/binary-amd64/Packages.xz',
      'debrep/dists/bookworm/main/i18n/by-hash/SHA256/a3d4a0bf',
      'debrep/dists/bookworm/InRelease.1796182351',
      'debrep/dists/bookworm/ReleaseXgpg',
      'debrep/pool/main/n/nginx/nginx_1.22.1-9_amd64.deb',
    ])
      expect(p).not.toMatch(re)
  })
})
