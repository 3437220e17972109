import type {Component} from './contract.js'

/**
 * Components in dependency order: each after the ones it names in `after`; otherwise in registry order. An
 * unknown name or a cycle is a programming error, reported with the names involved.
 */
export function orderComponents(components: Component[]): Component[] {
  const byName = new Map(components.map((c) => [c.name, c]))
  if (byName.size !== components.length) throw new Error('two components share a name')
  for (const c of components) {
    for (const dep of c.after ?? []) if (!byName.has(dep)) throw new Error(`component ${c.name}: unknown dependency ${dep}`)
  }
  const out: Component[] = []
  const placed = new Set<string>()
  while (out.length < components.length) {
    // The first component (in registry order) whose dependencies are all placed.
    const next = components.find((c) => !placed.has(c.name) && (c.after ?? []).every((d) => placed.has(d)))
    if (!next) {
      const left = components.filter((c) => !placed.has(c.name)).map((c) => `${c.name} (after ${(c.after ?? []).join(', ')})`)
      throw new Error(`components depend on each other in a cycle: ${left.join('; ')}`)
    }
    out.push(next)
    placed.add(next.name)
  }
  return out
}
