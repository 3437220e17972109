/*
 * QPS over time from Prometheus (`foobar monitor qps --since 15m`): the time range and its step, the PromQL, and
 * the parsing of `/api/v1/query_range`. Pure: the SSH round trip is in live.ts, the chart in src/cli/qps-chart.ts.
 */

/** What Prometheus keeps (server.ts RETENTION): a longer --since would chart nothing. */
const MAX_SINCE_SECONDS = 15 * 86400
/** The scrape interval (server.ts SCRAPE_INTERVAL): a finer step repeats the same samples. */
export const MIN_STEP_SECONDS = 15

/** `15m`, `90s`, `2h`, `1d` -> seconds (1 m to 15 d). */
export function parseSince(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text.trim())
  if (!m) throw new Error(`--since must look like 15m, 90s, 2h or 1d (got ${JSON.stringify(text)})`)
  const seconds = Number(m[1]) * {s: 1, m: 60, h: 3600, d: 86400}[m[2] as 's' | 'm' | 'h' | 'd']
  if (seconds < 60 || seconds > MAX_SINCE_SECONDS) throw new Error(`--since must be from 1m to 15d (Prometheus keeps 15 days; got ${text})`)
  return seconds
}

export interface QpsRange {
  sinceSeconds: number
  /** Seconds between two points: about one point per column of the chart, never finer than the scrape interval. */
  stepSeconds: number
  /** The window each point's rate is taken over: at least 4 scrapes (Prometheus needs 2 samples), at least the step. */
  rateSeconds: number
}

/** The step for `points` points over `since` seconds, rounded up to a whole multiple of the scrape interval. */
export function qpsRange(sinceSeconds: number, points: number): QpsRange {
  const raw = sinceSeconds / Math.max(1, points)
  const stepSeconds = Math.max(MIN_STEP_SECONDS, Math.ceil(raw / MIN_STEP_SECONDS) * MIN_STEP_SECONDS)
  return {sinceSeconds, stepSeconds, rateSeconds: Math.max(4 * MIN_STEP_SECONDS, stepSeconds)}
}

/** A PromQL string literal (double-quoted). */
const literal = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
/** An RE2 alternation matching exactly these names. */
const anyOf = (names: string[]) => literal(names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'))

/**
 * The two queries behind the chart, over the hosts selected: requests per second at the load balancers (HAProxy's
 * `https` frontend, the one `monitor qps` counts, summed over the LBs: two behind a floating address serve the site
 * between them) and at each web server (nginx's request counter, by host). Scraped with a `host` label per target
 * (templates/monitoring/prometheus.yml.hbs). A host list that is empty gives no query.
 */
export function qpsQueries(lbs: string[], webs: string[], range: QpsRange): {lb?: string; web?: string} {
  const w = `[${range.rateSeconds}s]`
  return {
    ...(lbs.length ? {lb: `sum(rate(haproxy_frontend_http_requests_total{job="haproxy",proxy="https",host=~${anyOf(lbs)}}${w}))`} : {}),
    ...(webs.length ? {web: `sum by (host) (rate(nginx_http_requests_total{job="nginx",host=~${anyOf(webs)}}${w}))`} : {}),
  }
}

/** One line of the chart: its name and its points (unix seconds, requests per second). */
export interface QpsSeries {
  name: string
  role: 'lb' | 'web'
  points: Array<[number, number]>
}

/**
 * `/api/v1/query_range` (a matrix) -> one series per result, named by `name(labels)`, in name order. Points whose
 * value is not a finite number (NaN after a counter reset) are left out: a gap, not a zero.
 */
export function parseRange(json: string, role: 'lb' | 'web', name: (labels: Record<string, string>) => string): QpsSeries[] {
  const body = JSON.parse(json) as {
    status?: string
    error?: string
    data?: {resultType?: string; result?: Array<{metric: Record<string, string>; values: Array<[number, string]>}>}
  }
  if (body.status !== 'success') throw new Error(`Prometheus: ${body.error ?? 'query failed'}`)
  if (body.data?.resultType !== 'matrix') throw new Error(`Prometheus: expected a matrix, got ${body.data?.resultType}`)
  return (body.data.result ?? [])
    .map((r) => ({
      name: name(r.metric),
      role,
      points: r.values.map(([t, v]) => [t, Number(v)] as [number, number]).filter(([, v]) => Number.isFinite(v)),
    }))
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** The range's end: the host's clock rounded down to the step, so two draws within a step ask for the same points. */
export const rangeEnd = (nowSeconds: number, range: QpsRange) => Math.floor(nowSeconds / range.stepSeconds) * range.stepSeconds
