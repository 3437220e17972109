import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {ExitCode} from '../util/errors.js'
import {connectFlags, limitFlag} from '../cli/run-flags.js'
import {type CheckResult, verifyHosts} from '../engine/verify.js'
import {loadInventory} from '../inventory/index.js'
import {STACK} from '../components/index.js'
import {LYNIS_MAX_AGE_HOURS} from '../components/hardening/lynis.js'
import {sshTransport} from '../remote/connection.js'
import {VerifyProgress} from '../cli/verify-progress.js'

export default class Verify extends FoobarCommand<typeof Verify> {
  static summary = 'Read-only checks of the live hosts, retried until settled: a table of host x check.'

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    timeout: Flags.integer({summary: 'Seconds to wait for checks to settle.', default: 60, min: 0}),
    lynis: Flags.boolean({
      summary: "Lynis' hardening index of each host: its latest report when fresh, else a run now; --no-lynis skips it.",
      default: true,
      allowNo: true,
    }),
    'lynis-now': Flags.boolean({
      summary: "Run Lynis now on every host (minutes) instead of reading the host's latest report.",
    }),
    'lynis-max-age': Flags.integer({
      summary: "Hours after which a Lynis report is too old to use (it must also be younger than foobar's last change).",
      default: LYNIS_MAX_AGE_HOURS,
      min: 1,
    }),
  }

  async run(): Promise<{passed: number; failed: number; skipped: number; checks: CheckResult[]}> {
    const inv = await loadInventory(this.flags.inventory)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK})
    // What each host is doing, on stderr (redrawn on a terminal, plain lines otherwise, nothing under --json).
    const mode = this.jsonEnabled() ? 'silent' : process.stderr.isTTY ? 'tty' : 'plain'
    const progress = await VerifyProgress.open(
      hosts.map((h) => h.name),
      mode,
    )
    progress.start()
    let checks: CheckResult[]
    try {
      checks = await verifyHosts(STACK, inv, hosts, {
        transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
        timeoutMs: this.flags.timeout * 1000,
        concurrency: this.flags.concurrency,
        lynis: this.flags.lynis,
        lynisNow: this.flags['lynis-now'],
        lynisMaxAgeHours: this.flags['lynis-max-age'],
        onEvent: (e) => progress.onEvent(e),
      })
    } catch (error) {
      await progress.abort(error)
      throw error
    }
    await progress.close()
    const failed = checks.filter((c) => !c.ok)
    const skipped = checks.filter((c) => c.skipped).length
    const passed = checks.length - failed.length - skipped
    if (!this.jsonEnabled()) {
      const w = Math.max(...checks.map((c) => c.check.length), 5)
      for (const c of checks)
        this.log(`${c.host.padEnd(10)} ${c.check.padEnd(w)}  ${c.skipped ? 'skip' : c.ok ? 'pass' : 'FAIL'}  ${c.detail}`)
      this.log(`\nverify: ${passed} passed, ${failed.length} failed${skipped ? `, ${skipped} skipped` : ''}`)
    }
    const result = {passed, failed: failed.length, skipped, checks}
    if (failed.length) {
      const badHosts = new Set(failed.map((c) => c.host))
      const detail = Object.fromEntries(failed.map((c) => [`${c.host} ${c.check}`, c.detail]))
      // Scripts get every check with --json, failed ones included, and the exit code says how bad.
      if (badHosts.size >= hosts.length) this.outcome(result, ExitCode.failure, 'verify failed on every host', {failed: detail})
      this.outcome(result, ExitCode.partial, `verify failed on ${[...badHosts].join(', ')}`, {failed: detail})
    }
    return result
  }
}
