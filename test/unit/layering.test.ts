/*
 * The structure as a test: every source file's relative imports, checked against the layers (nothing below
 * imports upward), for cycles, and for the engine naming a component. Read from the files themselves, so a new
 * import that breaks the rule fails here with the file and the import named.
 */
import {readFileSync, readdirSync, statSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'

const SRC = resolve(import.meta.dirname, '../../src')

/** Lower layers never import higher ones. */
const LAYERS: Record<string, number> = {
  util: 0,
  inventory: 1,
  secrets: 1,
  render: 1,
  remote: 1,
  engine: 2,
  exec: 2,
  components: 3,
  lab: 3,
  graph: 4,
  cli: 4,
  commands: 5,
  hooks: 5,
}

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n)
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : []
  })
}

/** file (relative to src) -> the src files it imports (relative imports only, `import type` included). */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>()
  for (const f of files(SRC)) {
    const text = readFileSync(f, 'utf8')
    const deps = [...text.matchAll(/(?:from\s+|import\()\s*'(\.{1,2}\/[^']+)\.js'/g)].map((m) =>
      relative(SRC, resolve(dirname(f), `${m[1]}.ts`)),
    )
    g.set(relative(SRC, f), [...new Set(deps)])
  }
  return g
}

const layerOf = (file: string) => {
  const top = file.split('/')[0]!
  const layer = LAYERS[top]
  if (layer === undefined) throw new Error(`src/${file}: top-level folder ${top} has no layer in test/unit/layering.test.ts`)
  return layer
}

/** Strongly connected components with more than one file (or a file importing itself): the cycles. */
function cycles(g: Map<string, string[]>): string[][] {
  let index = 0
  const idx = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const on = new Set<string>()
  const out: string[][] = []
  const visit = (v: string) => {
    idx.set(v, index)
    low.set(v, index++)
    stack.push(v)
    on.add(v)
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue
      if (!idx.has(w)) {
        visit(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!))
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = []
      let w: string
      do {
        w = stack.pop()!
        on.delete(w)
        scc.push(w)
      } while (w !== v)
      if (scc.length > 1 || (g.get(v) ?? []).includes(v)) out.push(scc.sort())
    }
  }
  for (const v of g.keys()) if (!idx.has(v)) visit(v)
  return out
}

describe('source structure', () => {
  const g = graph()

  test('every import resolves to a file of src/', () => {
    const missing = [...g].flatMap(([f, deps]) => deps.filter((d) => !g.has(d)).map((d) => `${f} -> ${d}`))
    expect(missing).toEqual([])
  })

  test('nothing below imports upward (util < inventory, remote, render, secrets < engine < components, lab < cli < commands)', () => {
    const upward = [...g].flatMap(([f, deps]) => deps.filter((d) => g.has(d) && layerOf(d) > layerOf(f)).map((d) => `${f} -> ${d}`))
    expect(upward).toEqual([])
  })

  test('the engine imports no component: components are handed to it (the stack)', () => {
    const named = [...g]
      .filter(([f]) => f.startsWith('engine/'))
      .flatMap(([f, deps]) => deps.filter((d) => d.startsWith('components/')).map((d) => `${f} -> ${d}`))
    expect(named).toEqual([])
  })

  test('no import cycle between files', () => {
    expect(cycles(g)).toEqual([])
  })

  test('the checker finds a cycle and an upward import when there is one', () => {
    const bad = new Map([
      ['engine/a.ts', ['engine/b.ts']],
      ['engine/b.ts', ['engine/a.ts', 'components/x.ts']],
      ['components/x.ts', []],
    ])
    expect(cycles(bad)).toEqual([['engine/a.ts', 'engine/b.ts']])
    expect([...bad].flatMap(([f, deps]) => deps.filter((d) => layerOf(d) > layerOf(f)))).toEqual(['components/x.ts'])
  })
})
