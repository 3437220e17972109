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

/** Values are shown JSON-quoted so that newlines and control characters are visible, never interpreted. */
export function showValue(value: unknown): string {
  const text = JSON.stringify(value)
  if (text === undefined) return String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
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
