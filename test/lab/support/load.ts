import {httpsProbe} from '../../../src/util/probes.js'

export interface LoadResult {
  sent: number
  ok: number
  failed: number
  /** The longest run of consecutive failures, in seconds (0 when none failed). */
  longestGapSeconds: number
  errors: string[]
}

/**
 * What a user would notice: HTTPS requests through the LB at a fixed rate (request i leaves at t0 + i/rate whatever
 * the others do), until stopped or `maxMs` — bounded in count and time, to the lab's LB only.
 */
export function pacedLoad(domain: string, ca: string, rate = 20, maxMs = 300_000, lb = '10.77.0.11') {
  const t0 = Date.now()
  let stop = false
  const outcomes: Array<{at: number; ok: boolean}> = []
  const errors: string[] = []
  const inflight: Array<Promise<void>> = []
  const loop = (async () => {
    for (let i = 0; !stop && Date.now() - t0 < maxMs; i++) {
      const wait = t0 + (i * 1000) / rate - Date.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      const at = Date.now()
      inflight.push(
        httpsProbe(lb, 443, domain, '/healthz', ca).then(
          (r) => {
            outcomes.push({at, ok: r.status === 200})
            if (r.status !== 200) errors.push(`HTTP ${r.status}`)
          },
          (e: Error) => {
            outcomes.push({at, ok: false})
            errors.push(e.message)
          },
        ),
      )
    }
  })()
  return {
    async finish(): Promise<LoadResult> {
      stop = true
      await loop
      await Promise.all(inflight)
      outcomes.sort((a, b) => a.at - b.at)
      let gap = 0
      let start: number | undefined
      for (const o of outcomes) {
        if (!o.ok) start ??= o.at
        else if (start !== undefined) {
          gap = Math.max(gap, o.at - start)
          start = undefined
        }
      }
      if (start !== undefined) gap = Math.max(gap, Date.now() - start)
      const failed = outcomes.filter((o) => !o.ok).length
      return {
        sent: outcomes.length,
        ok: outcomes.length - failed,
        failed,
        longestGapSeconds: gap / 1000,
        errors: [...new Set(errors)].slice(0, 5),
      }
    },
  }
}
