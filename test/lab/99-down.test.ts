import {describe, expect, it} from 'vitest'
import {down, leftovers, up} from '../../src/lab/index.js'
import {labIsUp, labSpec, sshOk} from './support/lab.js'

// Runs last: takes the lab down (keeping host state), proves nothing is left, and brings it up again for the
// global teardown, which purges and checks once more.
describe.skipIf(!labIsUp())('lab down', () => {
  it('leaves no process, mount, namespace or bridge, and the lab comes back up', async () => {
    const result = await down()
    expect(result.stopped).toEqual(['lb1', 'web1', 'web2'])
    expect(await leftovers()).toEqual([])

    const again = await up(await labSpec())
    expect(again.alreadyUp).toBe(false)
    for (const h of again.hosts) expect(await sshOk(h, 'hostname')).toBe(`${h.name}\n`)
  })
})
