/*
 * Pure parsing of what Prometheus's and Alertmanager's APIs answer (read over SSH on the monitoring host): the
 * loaded rules, the Alertmanagers Prometheus sends to, probe results, and the alerts firing now.
 */

export interface LoadedRule {
  name: string
  health: string
  lastError?: string
}

/** Prometheus `/api/v1/rules`: every alerting rule with its health (ok, unknown before its first evaluation, err). */
export function parseRules(json: string): LoadedRule[] {
  const body = JSON.parse(json) as {
    data?: {groups?: Array<{rules?: Array<{type?: string; name: string; health: string; lastError?: string}>}>}
  }
  return (body.data?.groups ?? []).flatMap((g) =>
    (g.rules ?? [])
      .filter((r) => r.type === 'alerting')
      .map((r) => ({name: r.name, health: r.health, ...(r.lastError ? {lastError: r.lastError} : {})})),
  )
}

/** Prometheus `/api/v1/alertmanagers`: the URLs it sends alerts to. */
export function parseAlertmanagers(json: string): string[] {
  const body = JSON.parse(json) as {data?: {activeAlertmanagers?: Array<{url: string}>}}
  return (body.data?.activeAlertmanagers ?? []).map((a) => a.url)
}

/** Prometheus `/api/v1/query` of an instant vector: labels and value of each series. */
export function parseVector(json: string): Array<{labels: Record<string, string>; value: number}> {
  const body = JSON.parse(json) as {data?: {result?: Array<{metric: Record<string, string>; value: [number, string]}>}}
  return (body.data?.result ?? []).map((r) => ({labels: r.metric, value: Number(r.value[1])}))
}

export interface FiringAlert {
  name: string
  /** The host the alert is about (every foobar rule sets it; empty when an alert has none). */
  host: string
  severity: string
  /** When it started firing (ISO). */
  since: string
  summary: string
  /** active: notified; suppressed: inhibited (its host is down) or silenced. */
  state: string
  /** The other labels (lb, probe, instance, ...), for --json. */
  labels: Record<string, string>
}

/** Alertmanager `/api/v2/alerts`: the alerts it holds now, oldest first. */
export function parseAmAlerts(json: string): FiringAlert[] {
  const body = JSON.parse(json) as Array<{
    labels: Record<string, string>
    annotations?: Record<string, string>
    startsAt: string
    status?: {state?: string}
  }>
  return body
    .map((a) => ({
      name: a.labels.alertname ?? '',
      host: a.labels.host ?? '',
      severity: a.labels.severity ?? '',
      since: a.startsAt,
      summary: a.annotations?.summary ?? '',
      state: a.status?.state ?? 'active',
      labels: a.labels,
    }))
    .sort((a, b) => a.since.localeCompare(b.since) || a.name.localeCompare(b.name) || a.host.localeCompare(b.host))
}

/** Alertmanager's `/metrics`: notifications sent and failed per integration (webhook, email). */
export function notificationCounts(metrics: string): Record<string, {sent: number; failed: number}> {
  const out: Record<string, {sent: number; failed: number}> = {}
  for (const m of metrics.matchAll(/^alertmanager_notifications(_failed)?_total\{[^}]*integration="(\w+)"[^}]*\} (\S+)$/gm)) {
    const entry = (out[m[2]!] ??= {sent: 0, failed: 0})
    if (m[1]) entry.failed += Number(m[3])
    else entry.sent += Number(m[3])
  }
  return out
}
