import type {BackendCounters} from './contract.js'

/*
 * Canary changes (`provision --canary N`): the first N backends with changes are changed first and watched under
 * real traffic; this file is the pure judgement of what the balancers counted during the watch. The roll itself
 * (which servers, the wait, putting the previous configuration back) is in run.ts.
 */

/** What makes a canary worse than the servers not changed. Documented in the README ("Canary changes"). */
export interface CanaryThresholds {
  /** The canary's error ratio may exceed the unchanged servers' by at most this much (0.01: one percentage point). */
  maxErrorRatioIncrease: number
  /** The canary's average response time may be at most this many times the unchanged servers'... */
  maxLatencyRatio: number
  /** ...plus this many milliseconds (small absolute differences are noise). */
  latencySlackMs: number
  /** Fewer responses than this from the canary during the watch: not enough traffic to judge, which fails. */
  minRequests: number
}

export const CANARY_THRESHOLDS: CanaryThresholds = {maxErrorRatioIncrease: 0.01, maxLatencyRatio: 2, latencySlackMs: 50, minRequests: 20}

/** A group's figures over the watch (every balancer's counters added up). */
export interface GroupFigures {
  servers: string[]
  responses: number
  errors: number
  /** errors / responses (0 with no responses). */
  errorRatio: number
  /** Average response time at the end of the watch, weighted by responses; undefined with no responses. */
  latencyMs?: number
  /** Servers that some balancer did not see up at the end of the watch. */
  down: string[]
}

export interface CanaryJudgement {
  verdict: 'pass' | 'fail'
  /** Why it failed (empty when it passed). */
  reasons: string[]
  canary: GroupFigures
  /** The backends not changed yet (absent when every backend was in the canary). */
  baseline?: GroupFigures
  watchedSeconds: number
  thresholds: CanaryThresholds
}

/** A counter's growth between two readings; a balancer restarted in between (counter went down) counts from zero. */
const growth = (before: number, after: number) => (after >= before ? after - before : after)

/**
 * The figures of `servers` between two readings of each balancer (`before[i]` and `after[i]` are balancer i's).
 */
export function groupFigures(servers: string[], before: BackendCounters[][], after: BackendCounters[][]): GroupFigures {
  let responses = 0
  let errors = 0
  let latencyWeighted = 0
  let latencyResponses = 0
  const down = new Set<string>()
  after.forEach((readings, i) => {
    for (const name of servers) {
      const a = readings.find((r) => r.name === name)
      if (!a) {
        down.add(name)
        continue
      }
      const b = before[i]?.find((r) => r.name === name)
      const n = growth(b?.responses ?? 0, a.responses)
      responses += n
      errors += growth(b?.errors ?? 0, a.errors)
      if (!a.up) down.add(name)
      if (a.latencyMs !== undefined && n > 0) {
        latencyWeighted += a.latencyMs * n
        latencyResponses += n
      }
    }
  })
  return {
    servers,
    responses,
    errors,
    errorRatio: responses > 0 ? errors / responses : 0,
    latencyMs: latencyResponses > 0 ? Math.round(latencyWeighted / latencyResponses) : undefined,
    down: [...down],
  }
}

const pct = (r: number) => `${(r * 100).toFixed(1)} %`

/**
 * Judges the canary against the backends not changed (the baseline). It fails when a canary server is not up at
 * the end; when the canary answered fewer than `minRequests` (not enough traffic to judge); when its error ratio
 * exceeds the baseline's by more than `maxErrorRatioIncrease` (with no baseline traffic: exceeds that ratio at
 * all); or when its average response time exceeds `maxLatencyRatio` × the baseline's + `latencySlackMs`.
 */
export function judgeCanary(
  canaryServers: string[],
  baselineServers: string[],
  before: BackendCounters[][],
  after: BackendCounters[][],
  watchedSeconds: number,
  t: CanaryThresholds = CANARY_THRESHOLDS,
): CanaryJudgement {
  const canary = groupFigures(canaryServers, before, after)
  const baseline = baselineServers.length ? groupFigures(baselineServers, before, after) : undefined
  const reasons: string[] = []
  if (canary.down.length) reasons.push(`${canary.down.join(', ')} not up in the load balancer at the end of the watch`)
  if (canary.responses < t.minRequests) {
    reasons.push(
      `not enough traffic to judge: the canary answered ${canary.responses} requests in ${watchedSeconds} s (at least ${t.minRequests} needed; --canary-wait longer, or --canary-min-requests)`,
    )
  }
  const reference = baseline && baseline.responses > 0 ? baseline.errorRatio : 0
  if (canary.responses > 0 && canary.errorRatio > reference + t.maxErrorRatioIncrease) {
    reasons.push(
      `error ratio ${pct(canary.errorRatio)} (${canary.errors} of ${canary.responses}) against ${pct(reference)} on ${baseline && baseline.responses > 0 ? 'the servers not changed' : 'no baseline traffic'} (at most +${pct(t.maxErrorRatioIncrease)})`,
    )
  }
  if (canary.latencyMs !== undefined && baseline?.latencyMs !== undefined) {
    const limit = baseline.latencyMs * t.maxLatencyRatio + t.latencySlackMs
    if (canary.latencyMs > limit) {
      reasons.push(
        `average response time ${canary.latencyMs} ms against ${baseline.latencyMs} ms on the servers not changed (at most ${t.maxLatencyRatio}× + ${t.latencySlackMs} ms = ${limit} ms)`,
      )
    }
  }
  return {verdict: reasons.length ? 'fail' : 'pass', reasons, canary, baseline, watchedSeconds, thresholds: t}
}

/** One line for people: the canary's and the baseline's figures. */
export function describeFigures(g: GroupFigures): string {
  const latency = g.latencyMs === undefined ? 'no latency figure' : `${g.latencyMs} ms average`
  return `${g.servers.join(', ')}: ${g.responses} responses, ${g.errors} errors (${pct(g.errorRatio)}), ${latency}${g.down.length ? `; not up: ${g.down.join(', ')}` : ''}`
}
