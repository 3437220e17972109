/*
 * The plan's unified diffs, checked hunk by hunk against GNU `diff -u` on the same two texts, and applied back
 * (jsdiff's applyPatch) to the text before to give the text after.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {applyPatch} from 'diff'
import {afterAll, describe, expect, test} from 'vitest'
import {unifiedDiff} from '../../src/engine/diff.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-diff-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

/** `diff -u` without its two header lines. */
function gnuHunks(before: string, after: string): string[] {
  writeFileSync(join(TMP, 'a'), before)
  writeFileSync(join(TMP, 'b'), after)
  const r = spawnSync('diff', ['-u', join(TMP, 'a'), join(TMP, 'b')], {encoding: 'utf8'})
  expect(r.status, r.stderr).toBeLessThan(2)
  return r.stdout === '' ? [] : r.stdout.replace(/\n$/, '').split('\n').slice(2)
}
const ourHunks = (before: string, after: string) => unifiedDiff(before, after, '/etc/x.conf').split('\n').slice(2)

const lines = (n: number, prefix = 'line') => Array.from({length: n}, (_, i) => `${prefix} ${i + 1}\n`).join('')

describe('unifiedDiff', () => {
  test('headers name the path on the host and the desired version', () => {
    const d = unifiedDiff('a\n', 'b\n', '/etc/haproxy/haproxy.cfg').split('\n')
    expect(d.slice(0, 2)).toEqual(['--- /etc/haproxy/haproxy.cfg (on host)', '+++ /etc/haproxy/haproxy.cfg (desired)'])
  })

  test('identical texts: only the headers', () => {
    const text = lines(20)
    expect(unifiedDiff(text, text, '/etc/x.conf').split('\n')).toHaveLength(2)
    expect(unifiedDiff('', '', '/etc/x.conf').split('\n')).toHaveLength(2)
  })

  const CASES: Array<[string, string, string]> = [
    ['one line replaced in the middle', lines(10), lines(10).replace('line 5\n', 'line five\n')],
    ['a single-line file replaced', 'old\n', 'new\n'],
    ['a block replaced (all - before +)', lines(10), lines(10).replace('line 4\nline 5\nline 6\n', 'four\nfive\n')],
    ['an insertion at the start', lines(8), `first\n${lines(8)}`],
    ['an append at the end', lines(8), `${lines(8)}last 1\nlast 2\n`],
    ['a deletion at the end', lines(8), lines(6)],
    ['two changes far apart: two hunks', lines(30), lines(30).replace('line 3\n', 'three\n').replace('line 27\n', 'twenty-seven\n')],
    ['two changes 6 lines apart: one hunk', lines(30), lines(30).replace('line 10\n', 'ten\n').replace('line 17\n', 'seventeen\n')],
    ['two changes 7 lines apart: two hunks', lines(30), lines(30).replace('line 10\n', 'ten\n').replace('line 18\n', 'eighteen\n')],
    ['create from empty', '', lines(3)],
    ['remove everything', lines(3), ''],
    [
      'a realistic config edit',
      'global\n  maxconn 2000\n  log stdout\n\ndefaults\n  mode http\n  timeout connect 5s\n',
      'global\n  maxconn 4000\n  log stdout\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n',
    ],
  ]
  test.each(CASES)('same hunks and +/- lines as diff -u: %s', (_name, before, after) => {
    expect(ourHunks(before, after)).toEqual(gnuHunks(before, after))
    expect(applyPatch(before, unifiedDiff(before, after, '/etc/x.conf'))).toBe(after)
  })

  test('a one-line change in a 16,000-line file: exactly that hunk', () => {
    const before = lines(16_000)
    const after = before.replace('line 8000\n', 'line eight thousand\n')
    const hunk = ['@@ -7997,7 +7997,7 @@', ' line 7997', ' line 7998', ' line 7999', '-line 8000', '+line eight thousand']
    expect(ourHunks(before, after)).toEqual([...hunk, ' line 8001', ' line 8002', ' line 8003'])
    expect(ourHunks(before, after)).toEqual(gnuHunks(before, after))
  })

  test('two unrelated large files: one replaced block between the common lines, and it applies', () => {
    // Past 1,000 changed lines the shortest diff is not searched for (it could take seconds); the middle is replaced.
    const before = `${lines(5)}${lines(2500, 'old')}${lines(5, 'tail')}`
    const after = `${lines(5)}${lines(2500, 'new')}${lines(5, 'tail')}`
    const hunks = ourHunks(before, after)
    expect(hunks[0]).toBe('@@ -3,2506 +3,2506 @@')
    expect(hunks.filter((l) => l.startsWith('@@'))).toHaveLength(1)
    expect(hunks.slice(1, 5)).toEqual([' line 3', ' line 4', ' line 5', '-old 1'])
    expect(hunks.slice(-4)).toEqual(['+new 2500', ' tail 1', ' tail 2', ' tail 3'])
    expect(applyPatch(before, unifiedDiff(before, after, '/etc/x.conf'))).toBe(after)
    const noEol = `${after}no newline`
    expect(applyPatch(before, unifiedDiff(before, noEol, '/etc/x.conf'))).toBe(noEol)
    expect(applyPatch('', unifiedDiff('', after, '/etc/x.conf'))).toBe(after)
    expect(applyPatch(after, unifiedDiff(after, '', '/etc/x.conf'))).toBe('')
  })

  test('a file that differs only by its final newline still shows a change', () => {
    expect(ourHunks('a\nb', 'a\nb\n')).toEqual(gnuHunks('a\nb', 'a\nb\n'))
    expect(ourHunks('a\nb\n', 'a\nb')).toEqual(gnuHunks('a\nb\n', 'a\nb'))
    expect(ourHunks('a\nb', 'a\nc')).toEqual(gnuHunks('a\nb', 'a\nc'))
    expect(ourHunks('', 'x')).toEqual(gnuHunks('', 'x'))
    for (const [before, after] of [
      ['a\nb', 'a\nb\n'],
      ['a\nb\n', 'a\nb'],
      ['a\nb', 'a\nc'],
      ['', 'x'],
    ] as const)
      expect(applyPatch(before, unifiedDiff(before, after, '/etc/x.conf'))).toBe(after)
  })

  test('create and remove from empty: -0,0 / +0,0 headers', () => {
    expect(ourHunks('', 'a\nb\n')).toEqual(['@@ -0,0 +1,2 @@', '+a', '+b'])
    expect(ourHunks('a\nb\n', '')).toEqual(['@@ -1,2 +0,0 @@', '-a', '-b'])
  })
})
