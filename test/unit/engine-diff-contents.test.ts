/*
 * The files' contents serve only the plan's diffs: the facts carry the files' hashes, and the contents of the files
 * that differ come in a second round trip, only when there are any (issue 20: a full-stack web host's facts carried
 * ~46 KB of contents in base64 at every run). What a user sees must not change: the diff of a file edited on the
 * host, never a secret's content.
 */
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import type {Change} from '../../src/engine/contract.js'
import {runPlan} from '../../src/engine/run.js'
import {FAST_HEALTH, type FakeFleet, TEST_MATERIAL, fakeFleet, testInventory} from './support/fake-host.js'

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))

const inv = testInventory(['web1 10.77.0.12 web'], {lean: true})
const SITE_KEY = '/etc/foobar/tls/site.key'

async function provisioned() {
  const fleet = fakeFleet(inv)
  fleets.push(fleet)
  const run = (apply: boolean) =>
    runPlan(STACK, inv, inv.hosts, {transport: fleet.transport, apply, concurrency: 4, material: TEST_MATERIAL, health: FAST_HEALTH})
  expect((await run(true)).hosts[0]!.status).toBe('changed')
  const web1 = fleet.hosts.web1!
  /** A plan, with the facts and contents scripts it ran. */
  const plan = async () => {
    const start = web1.log.length
    const report = await run(false)
    const scripts = web1.log.slice(start).map((c) => c.script)
    return {
      changes: report.hosts[0]!.changes as Array<Extract<Change, {kind: 'file'}>>,
      facts: scripts.filter((s) => s.startsWith('echo "@@os')),
      contents: scripts.filter((s) => s.startsWith('fb_files() {')),
    }
  }
  return {web1, plan}
}

describe('file contents for the diffs', () => {
  test('a converged host: one facts script, which reads no file content, and no second round trip', async () => {
    const {plan} = await provisioned()
    const p = await plan()
    expect(p.changes).toEqual([])
    expect(p.facts).toHaveLength(1)
    expect(p.facts[0]).not.toContain('@@blob')
    expect(p.contents).toEqual([])
  })

  test("a file edited on the host: the plan shows its diff, from one read of that file's content only", async () => {
    const {web1, plan} = await provisioned()
    const was = web1.file(NGINX_SITE)!
    const line = was.split('\n').find((l) => l.includes('server_name'))!
    web1.put(NGINX_SITE, was.replace(line, '    server_name edited.example;'))
    const p = await plan()
    const change = p.changes.find((c) => c.path === NGINX_SITE)!
    expect(change.action).toBe('update')
    expect(change.diff).toContain('-    server_name edited.example;')
    expect(change.diff).toContain(`+${line}`)
    expect(p.contents).toHaveLength(1)
    expect(p.contents[0]).toContain(NGINX_SITE)
    expect(p.contents[0]!.match(/'\/[^']*'|\/etc\/\S+/g)!.filter((path) => !path.includes(NGINX_SITE))).toEqual([])
  })

  test('a secret edited on the host: its change is shown without content, and its content is never read', async () => {
    const {web1, plan} = await provisioned()
    web1.put(SITE_KEY, 'not the key\n', 0o600)
    const p = await plan()
    expect(p.changes.find((c) => c.path === SITE_KEY)?.diff).toBe('(secret content changed; not shown)')
    expect(p.contents).toEqual([])
  })
})
