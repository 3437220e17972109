import {request} from 'node:https'

export const LB = '10.77.0.11'

export interface Answer {
  status: number
  body: string
}

/** One HTTPS request through the LB, the site's name and CA verified (no retries: an answer is what a user saw). */
export function viaLb(domain: string, ca: string, method: string, path: string, body?: string, timeoutMs = 15_000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = {Host: domain}
    if (body !== undefined) Object.assign(headers, {'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body)})
    const req = request({host: LB, port: 443, servername: domain, ca, method, path, headers, timeout: timeoutMs, agent: false}, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => (text += c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body: text}))
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs / 1000} s`)))
    req.on('error', reject)
    req.end(body)
  })
}

export interface WriteLoadResult {
  sent: number
  /** The ids the app acknowledged (201 after COMMIT). */
  acked: number[]
  failed: number
  /** The longest time without an acknowledged write, in seconds, and when it started (ms since the epoch). */
  longestGapSeconds: number
  /** Acknowledged writes per second, for the record. */
  errors: string[]
  /** When each write was acknowledged (ms since the epoch). */
  ackTimes: number[]
  /** When each failed write was sent (ms since the epoch). */
  failTimes: number[]
}

/**
 * A bounded write load as the app's users make it: POST /api/notes through the LB at a fixed rate (request i leaves at
 * t0 + i/rate), until stopped or `maxMs`; every acknowledged id is recorded.
 */
export function writeLoad(domain: string, ca: string, rate = 20, maxMs = 120_000) {
  const t0 = Date.now()
  let stop = false
  const acked: number[] = []
  const ackTimes: number[] = []
  const errors: string[] = []
  const failTimes: number[] = []
  let sent = 0
  const inflight: Array<Promise<void>> = []
  const loop = (async () => {
    for (let i = 0; !stop && Date.now() - t0 < maxMs; i++) {
      const wait = t0 + (i * 1000) / rate - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      sent++
      const at = Date.now()
      inflight.push(
        viaLb(domain, ca, 'POST', '/api/notes', JSON.stringify({body: `load ${i}`}), 10_000).then(
          (r) => {
            if (r.status === 201) {
              acked.push((JSON.parse(r.body) as {id: number}).id)
              ackTimes.push(Date.now())
            } else {
              errors.push(`HTTP ${r.status} ${r.body.trim().slice(0, 120)}`)
              failTimes.push(at)
            }
          },
          (e: Error) => {
            errors.push(e.message)
            failTimes.push(at)
          },
        ),
      )
    }
  })()
  return {
    t0,
    async finish(): Promise<WriteLoadResult> {
      stop = true
      await loop
      await Promise.all(inflight)
      const times = [t0, ...[...ackTimes].sort((a, b) => a - b), Date.now()]
      let gap = 0
      for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i]! - times[i - 1]!)
      return {sent, acked, failed: sent - acked.length, longestGapSeconds: gap / 1000, errors, ackTimes, failTimes}
    },
  }
}

/** Error messages counted, most frequent first (for the figures a test prints). */
export function tally(errors: string[]): string {
  const counts = new Map<string, number>()
  for (const e of errors) counts.set(e, (counts.get(e) ?? 0) + 1)
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 4)
    .map(([e, n]) => `${n}x ${e}`)
    .join('; ')
}

/** Seconds from `since` until writes were acknowledged again after the first write that failed after `since`. */
export function secondsBack(r: WriteLoadResult, since: number): number | undefined {
  const firstFail = r.failTimes.filter((t) => t >= since).sort((a, b) => a - b)[0]
  if (firstFail === undefined) return 0
  const back = r.ackTimes.filter((t) => t > firstFail).sort((a, b) => a - b)[0]
  return back === undefined ? undefined : (back - since) / 1000
}
