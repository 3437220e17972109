import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {connectFlags} from '../../cli/run-flags.js'
import {type TestAlertResult, testAlert} from '../../components/alerting/live.js'
import {loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'
import {ExitCode} from '../../util/errors.js'

export default class MonitorTestAlert extends FoobarCommand<typeof MonitorTestAlert> {
  static summary = 'Send a test alert through Alertmanager and wait until every configured receiver (webhook, e-mail) has it.'
  static description =
    "Alertmanager's notification counters tell when a receiver's integration took it; the alert carries a test_id label (printed) that the receiver shows. Exit 0 when every receiver had it, 1 otherwise."

  static flags = {
    ...connectFlags,
    timeout: Flags.integer({summary: 'Seconds to wait for the receivers.', default: 60, min: 1, max: 3600}),
  }

  async run(): Promise<TestAlertResult> {
    const inv = await loadInventory(this.flags.inventory)
    await this.requireLocalFiles(
      inv,
      inv.hosts.filter((h) => h.roles.includes('monitoring')),
    )
    const result = await testAlert(inv, sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}), {
      timeoutMs: this.flags.timeout * 1000,
    })
    for (const r of result.receivers)
      this.say(
        `${r.integration.padEnd(8)} ${r.delivered ? `received (${result.seconds} s)` : 'NOT received'}${r.failedAttempts ? `, ${r.failedAttempts} failed attempts (see journalctl -u prometheus-alertmanager on ${result.monitoring})` : ''}`,
      )
    this.say(`test_id ${result.testId}`)
    const missing = result.receivers.filter((r) => !r.delivered)
    if (missing.length > 0)
      this.outcome(
        result,
        ExitCode.failure,
        `test alert not received by ${missing.map((r) => r.integration).join(', ')} within ${this.flags.timeout} s`,
        {
          failed: Object.fromEntries(
            missing.map((r) => [r.integration, r.failedAttempts ? `${r.failedAttempts} failed attempts` : 'no notification']),
          ),
          quiet: true,
        },
      )
    return result
  }
}
