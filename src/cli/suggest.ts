import {distance} from 'fastest-levenshtein'

/**
 * Pure: the candidate the user most likely meant by `input` (a mistyped command or flag name), or undefined when
 * none is close: an unambiguous prefix ("prov" → "provision"), else the nearest by edit distance within a third of
 * the word's length (at least 2 edits: "provison", "verfy", "--limt").
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const unique = [...new Set(candidates)]
  if (unique.includes(input)) return input
  const prefixed = unique.filter((c) => input.length >= 3 && c.startsWith(input))
  if (prefixed.length === 1) return prefixed[0]
  let best: string | undefined
  let bestDistance = Infinity
  for (const c of unique) {
    const d = distance(input, c)
    if (d < bestDistance) [best, bestDistance] = [c, d]
  }
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined
}
