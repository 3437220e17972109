import {describe, expect, test} from 'vitest'
import type {Host} from '../../src/inventory/index.js'
import {type Runner, type Transport, preopened, runnerCache} from '../../src/remote/runner.js'

/** A transport whose opens take a moment, counting what was opened and closed. */
function slowTransport() {
  const opened: string[] = []
  const closed: string[] = []
  const transport: Transport = {
    open: async (host) => {
      opened.push(host.name)
      await new Promise((r) => setTimeout(r, 20))
      if (host.name === 'down') throw new Error('refused')
      return {host, close: () => closed.push(host.name)} as unknown as Runner
    },
  }
  return {transport, opened, closed}
}

const host = (name: string) => ({name}) as Host

describe('runnerCache', () => {
  test('callers asking at the same time share one connection, and closeAll closes every one opened', async () => {
    const t = slowTransport()
    const cache = runnerCache(t.transport)
    const [a, b, c] = await Promise.all([cache.get(host('mon')), cache.get(host('mon')), cache.get(host('mon'))])
    expect(a).toBe(b)
    expect(b).toBe(c)
    expect(await cache.get(host('mon'))).toBe(a)
    expect(t.opened).toEqual(['mon'])
    cache.closeAll()
    // Nothing left open to keep the process alive.
    expect(t.closed).toEqual(['mon'])
  })

  test('a failed opening is not cached: the next call tries again', async () => {
    const t = slowTransport()
    const cache = runnerCache(t.transport)
    await expect(Promise.all([cache.get(host('down')), cache.get(host('down'))])).rejects.toThrow('refused')
    await expect(cache.get(host('down'))).rejects.toThrow('refused')
    expect(t.opened).toEqual(['down', 'down'])
  })

  test("a kept runner (the one holding a host's lock) is handed out without a connection, and closeAll leaves it to its owner", async () => {
    const t = slowTransport()
    const lockConnection = {host: host('web1'), close: () => t.closed.push('web1 (lock)')} as unknown as Runner
    const cache = runnerCache(t.transport, undefined, new Map([['web1', lockConnection]]))
    expect(await cache.get(host('web1'))).toBe(lockConnection)
    await cache.get(host('web2'))
    expect(t.opened).toEqual(['web2'])
    cache.closeAll()
    expect(t.closed).toEqual(['web2'])
  })
})

describe('preopened', () => {
  test('connects at once to the first `limit` hosts; the first open of each takes that connection, later ones open anew', async () => {
    const t = slowTransport()
    const early = preopened(t.transport, [host('lb1'), host('web1'), host('web2')], 2)
    // Before anyone asks: the first two hosts, not the third (--concurrency bounds the connections begun early).
    expect(t.opened).toEqual(['lb1', 'web1'])
    const a = await early.open(host('lb1'))
    expect(t.opened).toEqual(['lb1', 'web1'])
    const b = await early.open(host('lb1'))
    expect(b).not.toBe(a)
    await early.open(host('web2'))
    expect(t.opened).toEqual(['lb1', 'web1', 'lb1', 'web2'])
    // web1's early connection was never taken: close() ends it (a run refused by the local lock leaves nothing open).
    early.close()
    await new Promise((r) => setTimeout(r, 30))
    expect(t.closed).toEqual(['web1'])
    // Taken connections are their taker's to close.
    expect(t.closed).not.toContain('lb1')
  })

  test('an early connection that fails is reported to whoever takes it (and only then), without an unhandled rejection', async () => {
    const t = slowTransport()
    const early = preopened(t.transport, [host('down')], 10)
    await new Promise((r) => setTimeout(r, 30))
    await expect(early.open(host('down'))).rejects.toThrow('refused')
    // The next open tries again.
    await expect(early.open(host('down'))).rejects.toThrow('refused')
    expect(t.opened).toEqual(['down', 'down'])
    early.close()
  })

  test('close() before an early connection is made closes it once it is', async () => {
    const t = slowTransport()
    const early = preopened(t.transport, [host('web1')], 10)
    early.close()
    expect(t.closed).toEqual([])
    await new Promise((r) => setTimeout(r, 30))
    expect(t.closed).toEqual(['web1'])
    // Nothing is handed out from it afterwards: a later open connects anew.
    await early.open(host('web1'))
    expect(t.opened).toEqual(['web1', 'web1'])
  })
})
