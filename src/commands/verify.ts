import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {ExitCode} from '../util/errors.js'
import {connectFlags, limitFlag} from '../cli/run-flags.js'
import {type CheckResult, verifyHosts} from '../engine/verify.js'
import {loadInventory} from '../inventory/index.js'
import {STACK} from '../components/index.js'
import {sshTransport} from '../remote/connection.js'

export default class Verify extends FoobarCommand<typeof Verify> {
  static summary = 'Read-only checks of the live hosts, retried until settled: a table of host x check.'

  static flags = {
    ...connectFlags,
    limit: limitFlag,
    timeout: Flags.integer({summary: 'Seconds to wait for checks to settle.', default: 60, min: 0}),
    lynis: Flags.boolean({
      summary: 'Run Lynis on each host (installed on demand) for its hardening index; --no-lynis skips it.',
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<{passed: number; failed: number; skipped: number; checks: CheckResult[]}> {
    const inv = await loadInventory(this.flags.inventory)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts, {stack: STACK})
    const checks = await verifyHosts(STACK, inv, hosts, {
      transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
      timeoutMs: this.flags.timeout * 1000,
      concurrency: this.flags.concurrency,
      lynis: this.flags.lynis,
    })
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
