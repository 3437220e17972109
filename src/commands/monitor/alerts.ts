import {FoobarCommand} from '../../cli/base.js'
import {connectFlags} from '../../cli/run-flags.js'
import type {FiringAlert} from '../../components/alerting/api.js'
import {firingAlerts} from '../../components/alerting/live.js'
import {loadInventory} from '../../inventory/index.js'
import {sshTransport} from '../../remote/connection.js'

/** `2h 5m`, `3m 10s`, `12s`: how long ago an ISO time was. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`
}

export default class MonitorAlerts extends FoobarCommand<typeof MonitorAlerts> {
  static summary = 'The alerts firing now (from Alertmanager on the monitoring host): which, on which host, since when.'
  static description =
    'Suppressed alerts (inhibited because their host is down, or silenced) are listed with their state. Exit 0 whether or not any fires; --json has the list.'

  static flags = {...connectFlags}

  async run(): Promise<{monitoring: string; firing: number; alerts: FiringAlert[]}> {
    const inv = await loadInventory(this.flags.inventory)
    const mon = inv.hosts.filter((h) => h.roles.includes('monitoring'))
    await this.requireLocalFiles(inv, mon)
    const {monitoring, alerts} = await firingAlerts(inv, sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}))
    const active = alerts.filter((a) => a.state === 'active').length
    this.say(
      `${alerts.length === 0 ? 'no alert firing' : `${active} firing${active < alerts.length ? `, ${alerts.length - active} suppressed` : ''}`} (Alertmanager on ${monitoring})`,
    )
    for (const a of alerts) {
      this.say(
        `${a.name.padEnd(20)} ${a.host.padEnd(10)} ${a.severity.padEnd(8)} since ${a.since} (${ago(a.since)})${a.state === 'active' ? '' : ` [${a.state}]`}  ${a.summary}`,
      )
    }
    return {monitoring, firing: active, alerts}
  }
}
