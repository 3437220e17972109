import {Socket} from 'node:net'
import {pool} from '../../../src/util/pool.js'
import {ssh} from './lab.js'

export type PortState = 'open' | 'closed' | 'filtered'

/** From the control machine: open (connected), closed (refused), filtered (no answer: dropped). */
export function probeFromControl(address: string, port: number, timeoutMs = 2500): Promise<PortState> {
  return new Promise((resolve) => {
    const s = new Socket()
    const done = (state: PortState) => {
      s.destroy()
      resolve(state)
    }
    s.setTimeout(timeoutMs, () => done('filtered'))
    s.once('connect', () => done('open'))
    s.once('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'closed' : 'filtered'))
    s.connect(port, address)
  })
}

/** From a lab host, with bash's /dev/tcp: exit 0 open, 124 (timeout) filtered, anything else closed. */
export async function probeFromHost(from: string, address: string, port: number): Promise<PortState> {
  const r = await ssh(from, `timeout 2.5 bash -c 'echo > /dev/tcp/${address}/${port}' 2>/dev/null; echo "rc=$?"`)
  const rc = Number(/rc=(\d+)/.exec(r.stdout)?.[1] ?? -1)
  return rc === 0 ? 'open' : rc === 124 ? 'filtered' : 'closed'
}

export async function probe(from: string, address: string, port: number): Promise<PortState> {
  return from === 'control' ? probeFromControl(address, port) : probeFromHost(from, address, port)
}

/** At most this many probes at once (each an SSH connection to a lab host, or a socket from here). */
const PROBES_AT_ONCE = 8

/**
 * Every [from, to, port, expected] probed, several at once (util/pool): a filtered port costs the probe's whole
 * timeout, so one after the other a 15-probe matrix took 25 s, most of it waiting. Returns what differed, in the
 * matrix's order.
 */
export async function probeMatrix(matrix: ReadonlyArray<readonly [string, string, number, PortState]>): Promise<string[]> {
  const got = await pool([...matrix], PROBES_AT_ONCE, ([from, to, port]) => probe(from, to, port))
  return matrix.flatMap(([from, to, port, want], i) => (got[i] === want ? [] : [`${from} -> ${to}:${port}: ${got[i]}, want ${want}`]))
}
