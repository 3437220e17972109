/*
 * Pure parsing and arithmetic behind `foobar monitor`: nginx's stub_status, HAProxy's stats CSV, Prometheus
 * metrics text and targets, and requests per second from two readings of a counter.
 */

/** A counter read on a host, with the host's own clock (seconds), so the rate ignores SSH latency. */
export interface Reading {
  host: string
  at: number
  count: number
}

/** nginx stub_status: the third number of the "accepts handled requests" line is the request counter. */
export function parseStubStatus(text: string): number {
  const m = /server accepts handled requests\s*\n\s*(\d+)\s+(\d+)\s+(\d+)/.exec(text)
  if (!m) throw new Error(`not an nginx stub_status page: ${JSON.stringify(text.slice(0, 80))}`)
  return Number(m[3])
}

/** HAProxy `show stat` CSV: a column of one proxy's row (`svname` FRONTEND, BACKEND or a server name). */
export function haproxyStat(csv: string, proxy: string, svname: string, column: string): number {
  const lines = csv.split('\n')
  const header = (lines.find((l) => l.startsWith('# ')) ?? '').slice(2).split(',')
  const col = header.indexOf(column)
  if (col < 0) throw new Error(`no ${column} column in HAProxy's stats`)
  const row = lines.map((l) => l.split(',')).find((f) => f[0] === proxy && f[1] === svname)
  if (!row) throw new Error(`no ${proxy}/${svname} row in HAProxy's stats`)
  return Number(row[col])
}

/**
 * Requests per second between two readings. A counter that went down was reset (daemon restarted): the rate is
 * then unknown for this window rather than negative or wildly high.
 */
export function rate(before: Reading, after: Reading): number | null {
  const dt = after.at - before.at
  if (dt <= 0 || after.count < before.count) return null
  return (after.count - before.count) / dt
}

export interface QpsReport {
  windowSeconds: number
  lb: Array<{host: string; qps: number | null}>
  web: Array<{host: string; qps: number | null}>
  /** Sum over the web servers; null when any of them is unknown. */
  webTotal: number | null
  /** Sum over the load balancers (two behind a floating address serve the site between them); null when any is unknown. */
  lbTotal: number | null
}

export function qpsReport(windowSeconds: number, lb: Array<[Reading, Reading]>, web: Array<[Reading, Reading]>): QpsReport {
  const rows = (pairs: Array<[Reading, Reading]>) => pairs.map(([a, b]) => ({host: a.host, qps: round(rate(a, b))}))
  const sum = (rs: Array<{qps: number | null}>) => (rs.some((r) => r.qps === null) ? null : round(rs.reduce((s, r) => s + r.qps!, 0)))
  const lbRows = rows(lb)
  const webRows = rows(web)
  return {windowSeconds, lb: lbRows, web: webRows, webTotal: sum(webRows), lbTotal: sum(lbRows)}
}

const round = (n: number | null) => (n === null ? null : Math.round(n * 100) / 100)

/** `10s`, `500ms`, `1m` or a bare number of seconds -> seconds (1 s to 1 h); `flag` names it in the error. */
export function parseWindow(text: string, flag = '--window'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim())
  if (!m) throw new Error(`${flag} must look like 10s, 500ms or 1m (got ${JSON.stringify(text)})`)
  const seconds = Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1)
  if (seconds < 1 || seconds > 3600) throw new Error(`${flag} must be from 1s to 1h (got ${text})`)
  return seconds
}

/** The version an exporter reports in its `*_build_info` metric (every one of ours has one). */
export function buildVersion(metrics: string): string | undefined {
  return /^\w+_build_info\{[^}]*\bversion="([^"]*)"/m.exec(metrics)?.[1]
}

export interface TargetHealth {
  job: string
  host: string
  up: boolean
  lastScrape?: string
  error?: string
}

/** Prometheus `/api/v1/targets`: each active target's job, host label, health and last scrape. */
export function parseTargets(json: string): TargetHealth[] {
  const body = JSON.parse(json) as {
    data?: {activeTargets?: Array<{labels: Record<string, string>; health: string; lastScrape: string; lastError: string}>}
  }
  return (body.data?.activeTargets ?? []).map((t) => ({
    job: t.labels.job ?? '',
    host: t.labels.host ?? t.labels.instance ?? '',
    up: t.health === 'up',
    lastScrape: t.lastScrape,
    ...(t.lastError ? {error: t.lastError} : {}),
  }))
}

/** Prometheus `/api/v1/query` of the build_info series: version by `job host`. */
export function parseVersions(json: string): Map<string, string> {
  const body = JSON.parse(json) as {data?: {result?: Array<{metric: Record<string, string>}>}}
  const out = new Map<string, string>()
  for (const r of body.data?.result ?? []) if (r.metric.version) out.set(`${r.metric.job} ${r.metric.host}`, r.metric.version)
  return out
}
