import {type Change, describe} from '../engine/plan.js'
import type {HostResult, RunReport} from '../engine/run.js'

/** The plan, per host: each change, with a unified diff for files (secret files only say that they change). */
export function formatPlan(results: HostResult[], diffs = true): string {
  const out: string[] = []
  for (const r of results) {
    out.push(
      `\n== ${r.host}: ${r.status === 'failed' ? 'FAILED (why: below)' : r.changes.length ? `${r.changes.length} changes` : 'no changes'}`,
    )
    for (const c of r.changes) {
      out.push(`  ~ ${describe(c)}`)
      if (diffs && c.kind === 'file' && c.diff) out.push(...c.diff.split('\n').map((l) => `    ${l}`))
    }
  }
  return out.join('\n')
}

export interface Summary {
  ok: number
  changed: number
  pending: number
  failed: number
  skipped: number
  changes: number
  durationMs: number
  failedHosts: Record<string, string>
}

export function summarize(report: RunReport): Summary {
  const count = (s: string) => report.hosts.filter((h) => h.status === s).length
  return {
    ok: count('unchanged'),
    changed: count('changed'),
    pending: count('pending'),
    failed: count('failed'),
    skipped: count('skipped'),
    changes: report.hosts.reduce((n, h) => n + (h.status === 'failed' && h.changes.length === 0 ? 0 : h.changes.length), 0),
    durationMs: report.durationMs,
    failedHosts: Object.fromEntries(
      report.hosts.filter((h) => h.status === 'failed' || h.status === 'skipped').map((h) => [h.host, underHost(h.host, h.error)]),
    ),
  }
}

/** An error as shown under its host's name: without the host's name a second time in front. */
export function underHost(host: string, error: string | undefined): string {
  const e = error ?? ''
  return e.startsWith(`${host}: `) ? e.slice(host.length + 2) : e
}

export function formatSummary(s: Summary, verb: string): string {
  const parts = [`${s.ok} ok`, `${s.changed} changed`]
  if (s.pending) parts.push(`${s.pending} with changes pending`)
  parts.push(`${s.failed} failed`)
  if (s.skipped) parts.push(`${s.skipped} skipped`)
  const lines = [`\n${verb}: ${parts.join(', ')}; ${s.changes} changes in ${(s.durationMs / 1000).toFixed(1)}s`]
  for (const [h, e] of Object.entries(s.failedHosts)) lines.push(`  ${h}: ${underHost(h, e)}`)
  return lines.join('\n')
}

export function jsonChanges(changes: Change[]) {
  return changes.map((c) => ({
    kind: c.kind,
    description: describe(c),
    ...(c.kind === 'file' ? {path: c.path, diff: c.diff} : {}),
    ...(c.kind === 'packages'
      ? {
          install: c.install,
          ...(c.versions ? {versions: c.versions} : {}),
          ...(c.guards ? {guards: c.guards.map(({package: p, path}) => ({package: p, path}))} : {}),
        }
      : {}),
    ...(c.kind === 'live' ? {component: c.component, action: c.action.kind, ...(c.action.data ? {data: c.action.data} : {})} : {}),
  }))
}
