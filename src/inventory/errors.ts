import {isMap, isScalar, isSeq, LineCounter, type Document, type Node} from 'yaml'
import {UserError} from '../util/errors.js'

export type FieldPath = Array<string | number>

export interface InventoryProblem {
  path: FieldPath
  message: string
  /** Point at the key itself rather than its value (unknown keys). */
  atKey?: string
}

/** `hosts[1].address` */
export function formatPath(path: FieldPath): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? part : `.${part}`
  }
  return out === '' ? '(top level)' : out
}

/**
 * Values are shown JSON-quoted so that newlines and control characters are visible, never interpreted; characters
 * outside ASCII as \\uXXXX, so a look-alike (a Cyrillic "е" in "wеb") does not show as a valid value.
 */
export function showValue(value: unknown): string {
  const json = JSON.stringify(value)
  if (json === undefined) return String(value)
  const text = json.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

/**
 * An unknown key as shown in messages: a key that could be a field name in full (up to 40 characters); any other
 * key only up to its first character that no field name has, with its length. The key of a line from a file passed
 * by mistake (`root:$6$salt$hash:...` from a shadow file) must not echo the rest of the line.
 */
export function showKey(key: string): string {
  if (/^[A-Za-z0-9_-]{1,40}$/.test(key)) return JSON.stringify(key)
  const head = /^[A-Za-z0-9_-]{0,24}/.exec(key)?.[0] ?? ''
  return `${JSON.stringify(`${head}...`)} (${[...key].length} characters, shown up to the first that no field name has)`
}

/** An unknown key as a part of a field path: in full when it could be a field name, else up to its first odd character. */
export function keyInPath(key: string): string {
  if (/^[A-Za-z0-9_-]{1,40}$/.test(key)) return key
  return `${/^[A-Za-z0-9_-]{0,24}/.exec(key)?.[0] ?? ''}...`
}

/** Names of the usual look-alikes of a-z (Unicode names); other characters are named by their script. */
const LOOK_ALIKES: Record<string, string> = {
  '\u0430': 'CYRILLIC SMALL LETTER A',
  '\u0435': 'CYRILLIC SMALL LETTER IE',
  '\u043e': 'CYRILLIC SMALL LETTER O',
  '\u0440': 'CYRILLIC SMALL LETTER ER',
  '\u0441': 'CYRILLIC SMALL LETTER ES',
  '\u0443': 'CYRILLIC SMALL LETTER U',
  '\u0445': 'CYRILLIC SMALL LETTER HA',
  '\u0456': 'CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I',
  '\u0458': 'CYRILLIC SMALL LETTER JE',
  '\u0455': 'CYRILLIC SMALL LETTER DZE',
  '\u0501': 'CYRILLIC SMALL LETTER KOMI DE',
  '\u051b': 'CYRILLIC SMALL LETTER QA',
  '\u051d': 'CYRILLIC SMALL LETTER WE',
  '\u04bb': 'CYRILLIC SMALL LETTER SHHA',
  '\u03b1': 'GREEK SMALL LETTER ALPHA',
  '\u03bf': 'GREEK SMALL LETTER OMICRON',
  '\u03c1': 'GREEK SMALL LETTER RHO',
  '\u03bd': 'GREEK SMALL LETTER NU',
  '\u03b9': 'GREEK SMALL LETTER IOTA',
  '\u03ba': 'GREEK SMALL LETTER KAPPA',
  '\u0131': 'LATIN SMALL LETTER DOTLESS I',
  '\u0261': 'LATIN SMALL LETTER SCRIPT G',
  '\u2010': 'HYPHEN',
  '\u2011': 'NON-BREAKING HYPHEN',
  '\u2012': 'FIGURE DASH',
  '\u2013': 'EN DASH',
  '\u2212': 'MINUS SIGN',
  '\u00a0': 'NO-BREAK SPACE',
  '\u200b': 'ZERO WIDTH SPACE',
  '\ufeff': 'ZERO WIDTH NO-BREAK SPACE',
}

const SCRIPTS: Array<[RegExp, string]> = [
  [/\p{Script=Cyrillic}/u, 'a Cyrillic letter'],
  [/\p{Script=Greek}/u, 'a Greek letter'],
  [/\p{Script=Armenian}/u, 'an Armenian letter'],
  [/[\uff01-\uff5e]/u, 'a fullwidth form'],
  [/\p{Script=Latin}/u, 'a Latin letter outside ASCII'],
  [/\p{Cf}/u, 'an invisible formatting character'],
  [/\p{Z}/u, 'a space outside ASCII'],
]

/**
 * The characters outside ASCII in a value, by position and code point: `character 2 is U+0435 CYRILLIC SMALL
 * LETTER IE, not ASCII`. Undefined when it is all ASCII. Every field foobar reads is ASCII.
 */
export function describeNonAscii(value: string, max = 3): string | undefined {
  const found: string[] = []
  let count = 0
  ;[...value].forEach((c, i) => {
    const cp = c.codePointAt(0)!
    if (cp < 0x80) return
    count++
    if (found.length >= max) return
    const name = LOOK_ALIKES[c] ?? SCRIPTS.find(([re]) => re.test(c))?.[1]
    found.push(`character ${i + 1} is U+${cp.toString(16).toUpperCase().padStart(4, '0')}${name ? ` ${name}` : ''}`)
  })
  if (count === 0) return undefined
  const more = count > found.length ? ` (and ${count - found.length} more)` : ''
  return `${found.join(', ')}${more}: not ASCII (a look-alike?)`
}

/** Maps field paths back to file:line:column through the YAML document's source ranges. */
export class SourceLocator {
  constructor(
    private readonly file: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  locate(path: FieldPath, atKey?: string): string {
    let node: unknown = this.doc.contents
    let offset = (node as Node | null)?.range?.[0] ?? 0
    for (const part of path) {
      const next = this.child(node, part)
      if (next === undefined) break
      node = next.node
      offset = next.offset
    }
    if (atKey !== undefined) {
      const key = this.keyNode(node, atKey)
      if (key?.range) offset = key.range[0]
    }
    const {line, col} = this.lines.linePos(offset)
    return `${this.file}:${line}:${col}`
  }

  valueAt(path: FieldPath): unknown {
    const node = this.doc.getIn(path, true)
    return isScalar(node) ? node.value : undefined
  }

  private child(node: unknown, part: string | number): {node: unknown; offset: number} | undefined {
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === part)
      if (!pair) return undefined
      const value = pair.value as Node | null
      const offset = value?.range?.[0] ?? (pair.key as Node | null)?.range?.[0] ?? 0
      return {node: value, offset}
    }
    if (isSeq(node) && typeof part === 'number') {
      const item = node.items[part] as Node | undefined
      if (!item) return undefined
      return {node: item, offset: item.range?.[0] ?? 0}
    }
    return undefined
  }

  private keyNode(node: unknown, key: string): Node | undefined {
    if (!isMap(node)) return undefined
    const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === key)
    return pair?.key as Node | undefined
  }
}

/** One error for the whole inventory, listing every problem with its location. Exit 2. */
export class InventoryError extends UserError {
  constructor(
    readonly file: string,
    readonly problems: Array<{location: string; field: string; message: string}>,
  ) {
    super(
      `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'} in the inventory; nothing was changed`,
      problems.map((p) => `${p.location}: ${p.field}: ${p.message}`),
      ['Fix the fields above, then run `foobar inventory check`.'],
    )
    this.name = 'InventoryError'
  }
}
