import {structuredPatch, type StructuredPatchHunk} from 'diff'

/**
 * Past this many changed lines (removed + added), the shortest diff is not worth its cost: Myers' algorithm is
 * O((N+M)·D), so two unrelated 16,000-line files would take 27 s. Giving up at 1,000 costs at most ~0.1 s; such a
 * pair is shown as one replaced block between their common first and last lines instead (still a proper unified
 * diff that `patch` applies, just not the shortest).
 */
const MAX_EDIT_LENGTH = 1000

/**
 * A unified diff of two texts, hunk for hunk as GNU `diff -u` prints it: Myers' O(ND) diff from the `diff`
 * package (a one-line change in a 16,000-line file takes milliseconds), formatted here with diff -u's ranges
 * and `\ No newline at end of file`.
 */
export function unifiedDiff(before: string, after: string, path: string, context = 3): string {
  const patch = structuredPatch(path, path, before, after, '', '', {context, maxEditLength: MAX_EDIT_LENGTH})
  const hunks = patch ? patch.hunks : oneBlock(before, after, context)
  const out = [`--- ${path} (on host)`, `+++ ${path} (desired)`]
  for (const h of hunks) out.push(`@@ -${range(h.oldStart, h.oldLines)} +${range(h.newStart, h.newLines)} @@`, ...h.lines)
  return out.join('\n')
}

/** diff -u's hunk range: `start,len`, just `start` for one line, the line before for none. */
const range = (start: number, len: number) => (len === 1 ? `${start}` : `${len ? start : start - 1},${len}`)

/** The texts as one changed block between their common first and last lines, with `context` lines around it. */
function oneBlock(before: string, after: string, context: number): StructuredPatchHunk[] {
  const a = linesWithEnds(before)
  const b = linesWithEnds(after)
  let prefix = 0
  while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++
  let suffix = 0
  while (suffix < a.length - prefix && suffix < b.length - prefix && a[a.length - 1 - suffix] === b[b.length - 1 - suffix]) suffix++
  if (prefix === a.length && prefix === b.length) return []
  const lead = Math.min(prefix, context)
  const trail = Math.min(suffix, context)
  const raw = [
    ...a.slice(prefix - lead, prefix).map((l) => ` ${l}`),
    ...a.slice(prefix, a.length - suffix).map((l) => `-${l}`),
    ...b.slice(prefix, b.length - suffix).map((l) => `+${l}`),
    ...a.slice(a.length - suffix, a.length - suffix + trail).map((l) => ` ${l}`),
  ]
  // As diff -u shows it: the newline off each line, and a marker after a last line that has none.
  const lines = raw.flatMap((l) => (l.endsWith('\n') ? [l.slice(0, -1)] : [l, '\\ No newline at end of file']))
  return [
    {
      oldStart: prefix - lead + 1,
      oldLines: lead + (a.length - suffix - prefix) + trail,
      newStart: prefix - lead + 1,
      newLines: lead + (b.length - suffix - prefix) + trail,
      lines,
    },
  ]
}

/** The text's lines, each with its newline (the last one may have none). */
function linesWithEnds(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? []
}
