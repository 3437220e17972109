import {describeFigures} from '../engine/canary.js'
import type {CanaryReport} from '../engine/run.js'

/** What `provision --canary` says about the canary after the summary: the verdict, both groups' figures, and why. */
export function formatCanary(c: CanaryReport): string {
  if (c.verdict === 'not-run') return `canary: not watched (${c.reason})`
  const lines = [
    `canary ${c.hosts.join(', ')}: ${c.verdict === 'pass' ? 'passed' : 'judged worse'} after ${c.watchedSeconds} s under traffic`,
    `  canary:      ${describeFigures(c.canary)}`,
    `  not changed: ${c.baseline ? describeFigures(c.baseline) : 'none (every web server was in the canary)'}`,
  ]
  for (const r of c.reasons) lines.push(`  - ${r}`)
  if (c.verdict === 'fail') {
    lines.push(
      c.rolledBack
        ? '  the canary is back on its previous configuration and in the load balancer; no other host was changed'
        : '  putting the canary back did not complete (see its error above); no other host was changed',
    )
  }
  return lines.join('\n')
}
