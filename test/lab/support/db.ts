import {expect} from 'vitest'
import {foobar, json, sleep, variant} from './cli.js'
import {LAB_INVENTORY} from './lab.js'

/** `db status --json` of an inventory: exit code, output, body. */
export function dbStatus(inv: string) {
  const r = foobar(['db', 'status', '-i', inv, '--json'])
  return {code: r.code, out: r.stdout + r.stderr, body: r.stdout ? json(r.stdout) : undefined}
}

/**
 * Polls db status until it exits 0 (the topology right), failing with its last words. When it was not right at
 * once, says how long it took and the problems it named first (what a user running `db status` would have seen).
 */
export async function waitStatusOk(inv: string, timeoutMs = 60_000) {
  const t0 = Date.now()
  let s = dbStatus(inv)
  const first = s.code === 0 ? undefined : problemsOf(s)
  while (s.code !== 0 && Date.now() - t0 < timeoutMs) {
    await sleep(2000)
    s = dbStatus(inv)
  }
  if (first !== undefined)
    console.log(`db status: exit 0 after ${((Date.now() - t0) / 1000).toFixed(1)} s of asking; first it said: ${first}`)
  expect(s.code, s.out).toBe(0)
}

function problemsOf(s: ReturnType<typeof dbStatus>): string {
  const problems = s.body?.problems as Array<{hosts: string[]; problem: string}> | undefined
  if (problems?.length) return problems.map((p) => `${p.hosts.join(', ')}: ${p.problem}`).join('; ')
  return s.out.trim().split('\n').slice(0, 3).join(' | ')
}

/**
 * Puts the lab's databases back as inventories/lab.yml (or its variant made by `edit`) has them (web1 the designated writer, web2 its replica),
 * whatever a failed test left: the current writer is found in db status, web1 made its replica (provision repoints
 * or re-seeds it), then promoted. A no-op when the topology is already the lab's.
 */
export async function restoreLabTopology(edit?: (text: string) => string): Promise<void> {
  const base = edit ? variant('restored', edit) : LAB_INVENTORY
  const s = dbStatus(base)
  const writer = (s.body?.writer?.name as string | undefined) ?? 'web1'
  if (s.code === 0 && writer === 'web1') return
  if (writer !== 'web1') {
    const other = writer === 'web2' ? 'web1' : 'web2'
    const inv = variant('restore', (t) =>
      (edit ? edit(t) : t).replace('  primary: web1\n  replicas: [web2]', `  primary: ${writer}\n  replicas: [${other}]`),
    )
    const p = foobar(['provision', '-i', inv, '--yes'])
    expect(p.code, p.stdout + p.stderr).toBe(0)
    await waitStatusOk(inv)
    const promote = foobar(['db', 'promote', 'web1', '-i', inv, '--yes'])
    expect(promote.code, promote.stdout + promote.stderr).toBe(0)
  }
  const p = foobar(['provision', '-i', base, '--yes'])
  expect(p.code, p.stdout + p.stderr).toBe(0)
  await waitStatusOk(base)
}
