/*
 * The control address (foobar's address as the host sees it) goes into the firewall and fail2ban: the rule that keeps
 * foobar from locking itself out. The facts are gathered while the host is asked for it, starting from this end's
 * address of the connection; these tests check that the host's answer is what the rules hold whatever this end
 * guessed (an address translated on the way, a jump host), and that the facts are gathered once.
 */
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {UFW_RULES_FILE} from '../../src/components/firewall/index.js'
import {runPlan} from '../../src/engine/run.js'
import {FAST_HEALTH, type FakeFleet, TEST_MATERIAL, fakeFleet, testInventory} from './support/fake-host.js'

const fleets: FakeFleet[] = []
afterAll(() => fleets.forEach((f) => f.cleanup()))

const inv = testInventory(['web1 10.77.0.12 web'], {lean: true})
const HOST_SEES = '198.51.100.7'

async function provisionTwice(localAddress: string | null, o: {locks?: boolean} = {}) {
  const fleet = fakeFleet(inv, {clientAddress: HOST_SEES, localAddress, holds: o.locks})
  fleets.push(fleet)
  const run = () =>
    runPlan(STACK, inv, inv.hosts, {
      transport: fleet.transport,
      apply: true,
      concurrency: 4,
      material: TEST_MATERIAL,
      health: FAST_HEALTH,
      ...(o.locks ? {lock: {info: 'test run', waitMs: 0}} : {}),
    })
  const web1 = fleet.hosts.web1!
  const facts = () => web1.log.filter((c) => c.script.startsWith('echo "@@os'))
  const first = await run()
  const factsFirst = facts().length
  const second = await run()
  return {web1, first, second, factsFirst, factsSecond: facts().length - factsFirst, secondFacts: facts().slice(factsFirst)}
}

describe('the control address in the firewall', () => {
  test.each([
    ['this end knows the address the host sees', HOST_SEES],
    ['an address translated on the way (NAT): the host names another', '10.77.0.99'],
    ['no address known at this end (a jump host)', null],
  ])("%s: the rules allow the host's view of it, and a second run changes nothing", async (_, local) => {
    const {web1, first, second, factsSecond} = await provisionTwice(local)
    expect(first.hosts.map((h) => [h.status, h.error])).toEqual([['changed', undefined]])
    const rules = web1.file(UFW_RULES_FILE)
    expect(rules).toContain(`${HOST_SEES}/32`)
    expect(rules).not.toContain('10.77.0.99')
    expect(second.hosts.map((h) => [h.status, h.changes.length])).toEqual([['unchanged', 0]])
    // The facts of the no-op run: one script, whichever address was guessed (the query does not depend on it).
    expect(factsSecond).toBe(1)
  })

  test.each([
    ['this end knows the address the host sees: the facts come with the lock', HOST_SEES, true],
    [
      'an address translated on the way (NAT): the facts come with the lock all the same (what they ask does not depend on it)',
      '10.77.0.99',
      true,
    ],
    ['no address known at this end (a jump host): nothing to ask with the lock', null, false],
  ])('a changing run with host locks, %s', async (_, local, inHold) => {
    const {web1, first, second, factsSecond, secondFacts} = await provisionTwice(local, {locks: true})
    expect(first.hosts.map((h) => [h.status, h.error])).toEqual([['changed', undefined]])
    expect(web1.file(UFW_RULES_FILE)).toContain(`${HOST_SEES}/32`)
    expect(web1.file(UFW_RULES_FILE)).not.toContain('10.77.0.99')
    expect(second.hosts.map((h) => [h.status, h.changes.length])).toEqual([['unchanged', 0]])
    expect(factsSecond).toBe(1)
    expect(secondFacts[0]!.inHold ?? false).toBe(inHold)
    // Every run took the lock first, on the connection it then used.
    expect(web1.log.filter((c) => c.script.includes('flock -n')).length).toBe(2)
  })
})
