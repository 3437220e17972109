/** A unified diff of two texts (LCS over lines; config files are small). */
export function unifiedDiff(before: string, after: string, path: string, context = 3): string {
  const a = splitLines(before)
  const b = splitLines(after)
  const n = a.length
  const m = b.length
  // lcs[i][j] = LCS length of a[i..] and b[j..]
  const lcs: Uint32Array[] = Array.from({length: n + 1}, () => new Uint32Array(m + 1))
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!)
  }
  type Op = {t: ' ' | '-' | '+'; line: string; ai: number; bi: number}
  const ops: Op[] = []
  let i = 0
  let j = 0
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) ops.push({t: ' ', line: a[i]!, ai: i++, bi: j++})
    // On a tie, the deletion first: a changed block reads as its old lines, then its new ones (as diff -u prints it).
    else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) ops.push({t: '-', line: a[i]!, ai: i++, bi: j})
    else ops.push({t: '+', line: b[j]!, ai: i, bi: j++})
  }
  const out = [`--- ${path} (on host)`, `+++ ${path} (desired)`]
  let k = 0
  while (k < ops.length) {
    if (ops[k]!.t === ' ') {
      k++
      continue
    }
    let start = Math.max(0, k - context)
    let end = k
    // extend the hunk while changes are within 2*context lines of each other
    while (end < ops.length) {
      if (ops[end]!.t !== ' ') {
        end++
        continue
      }
      let run = 0
      while (end + run < ops.length && ops[end + run]!.t === ' ') run++
      if (end + run >= ops.length || run > 2 * context) {
        end = Math.min(ops.length, end + context)
        break
      }
      end += run
    }
    const hunk = ops.slice(start, end)
    const aStart = hunk[0]!.ai + 1
    const bStart = hunk[0]!.bi + 1
    const aLen = hunk.filter((o) => o.t !== '+').length
    const bLen = hunk.filter((o) => o.t !== '-').length
    out.push(`@@ -${range(aStart, aLen)} +${range(bStart, bLen)} @@`)
    for (const o of hunk) {
      // A last line without its newline differs from the same text with one; shown as diff -u shows it.
      if (o.line.endsWith(NO_EOL)) out.push(`${o.t}${o.line.slice(0, -NO_EOL.length)}`, '\\ No newline at end of file')
      else out.push(`${o.t}${o.line}`)
    }
    k = end
    start = end
  }
  return out.join('\n')
}

const NO_EOL = '\u0000no-eol'

/** diff -u's hunk range: `start,len`, just `start` for one line, the line before for none. */
const range = (start: number, len: number) => (len === 1 ? `${start}` : `${len ? start : start - 1},${len}`)

function splitLines(text: string): string[] {
  if (text === '') return []
  const lines = text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  else lines[lines.length - 1] += NO_EOL
  return lines
}
