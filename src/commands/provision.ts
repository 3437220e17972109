import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {connectFlags, limitFlag, waitFlag} from '../cli/run-flags.js'
import {failIfNeeded, runSession} from '../cli/session.js'
import {loadInventory} from '../inventory/index.js'
import {jsonChanges} from '../cli/plan-output.js'
import {STACK} from '../components/index.js'
import {createTlsMaterial} from '../components/tls/index.js'
import {sshTransport} from '../remote/connection.js'
import {CANARY_THRESHOLDS} from '../engine/canary.js'
import {CanaryRejected, UserError} from '../util/errors.js'
import {formatCanary} from '../cli/canary-output.js'

const pct = (r: number) => `${(r * 100).toFixed(0)} percentage point${r === 0.01 ? '' : 's'}`

/** `--canary-wait`: 90s, 5m, 1h -> seconds (10 s to 1 h). */
export function parseWait(text: string): number {
  const m = /^(\d+)(s|m|h)?$/.exec(text.trim())
  const seconds = m ? Number(m[1]) * {s: 1, m: 60, h: 3600}[(m[2] ?? 's') as 's' | 'm' | 'h'] : Number.NaN
  if (!(seconds >= 10 && seconds <= 3600)) {
    throw new UserError(`--canary-wait must be a duration from 10s to 1h such as 90s or 5m (got ${JSON.stringify(text)})`)
  }
  return seconds
}

export default class Provision extends FoobarCommand<typeof Provision> {
  static summary = 'Bring every host to the inventory: packages, configs (validated, atomic), services; reload what changed.'
  static description =
    'Exit codes: 0 done (or nothing to do), 1 no selected host succeeded, 2 bad input (nothing changed), 3 some hosts failed or were skipped (the others done), 5 another run holds the lock (named; nothing changed), 6 the canary (--canary) was judged worse and put back (nothing else changed).\n\n' +
    `--canary N: the first N web servers with changes change first, before any other host, and are watched under real traffic for --canary-wait: HAProxy's counters for them against the web servers not changed. Worse means any of: a canary server not UP at the end; fewer than --canary-min-requests responses (not enough traffic to judge); its error ratio (5xx, failed connections, aborted responses) above the others' by more than ${pct(CANARY_THRESHOLDS.maxErrorRatioIncrease)}; its average response time above ${CANARY_THRESHOLDS.maxLatencyRatio}x the others' + ${CANARY_THRESHOLDS.latencySlackMs} ms. Then each canary server gets its previous files back (packages installed stay), is reloaded, health-gated and enabled again, and the run stops (exit 6).`
  static examples = [
    '<%= config.bin %> provision -i inventories/lab.yml --yes',
    '<%= config.bin %> provision --limit web --serial 1',
    '<%= config.bin %> provision --canary 1 --canary-wait 2m --yes',
  ]

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    wait: waitFlag,
    yes: Flags.boolean({char: 'y', summary: 'Apply without asking (required without a terminal).'}),
    'dry-run': Flags.boolean({summary: 'Only show the plan (same as `foobar plan`).'}),
    serial: Flags.integer({summary: 'Rolling batches of N hosts; stop at the first batch with a failure.', min: 1, exclusive: ['canary']}),
    canary: Flags.integer({
      summary: 'Change N web servers first and watch them under real traffic before the rest (see the description).',
      min: 1,
    }),
    'canary-wait': Flags.string({
      summary: 'How long the canary is watched: 90s, 5m (default 60s).',
      dependsOn: ['canary'],
    }),
    'canary-min-requests': Flags.integer({
      summary: `Responses the canary must give during the watch to be judged (default ${CANARY_THRESHOLDS.minRequests}); 0 judges by health alone when there is no traffic.`,
      min: 0,
      dependsOn: ['canary'],
    }),
  }

  async run() {
    const canary = this.flags.canary
      ? {
          count: this.flags.canary,
          waitMs: parseWait(this.flags['canary-wait'] ?? '60s') * 1000,
          thresholds: {...CANARY_THRESHOLDS, minRequests: this.flags['canary-min-requests'] ?? CANARY_THRESHOLDS.minRequests},
        }
      : undefined
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK})
    const apply = !this.flags['dry-run']
    const {report, summary} = await runSession(inv, hosts, {
      waitSeconds: this.flags.wait,
      // Key material is created here (not by plan), under the run's lock: the internal CA, leaves, the placeholder;
      // never a new CA over hosts that already carry one (exit 2, nothing changed). The run reads what this created.
      prepare: async () => {
        await createTlsMaterial(STACK, inv, {
          transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
          concurrency: this.flags.concurrency,
        })
      },
      apply,
      json: this.jsonEnabled(),
      yes: this.flags.yes,
      concurrency: this.flags.concurrency,
      serial: this.flags.serial,
      canary,
      acceptNewHostKeys: this.flags['accept-new-host-keys'],
      log: (s) => this.log(s),
    })
    const result = {
      summary,
      hosts: report.hosts.map((h) => ({host: h.host, status: h.status, error: h.error, changes: jsonChanges(h.changes)})),
      ...(report.canary ? {canary: report.canary} : {}),
    }
    if (report.canary && !this.jsonEnabled()) this.log(formatCanary(report.canary))
    return this.withResult(result, () => {
      if (report.canary?.verdict === 'fail') {
        throw new CanaryRejected(
          `the canary ${report.canary.hosts.join(', ')} was judged worse than the servers not changed and put back; nothing else was changed`,
          summary.failedHosts,
        )
      }
      failIfNeeded(summary, hosts.length)
    })
  }
}
