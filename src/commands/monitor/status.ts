import {FoobarCommand} from '../../cli/base.js'
import {ExitCode} from '../../util/errors.js'
import {connectFlags, limitFlag} from '../../cli/run-flags.js'
import {type MonitorStatus, monitorStatus} from '../../components/monitoring/live.js'
import {loadInventory} from '../../inventory/index.js'
import {STACK} from '../../components/index.js'
import {sshTransport} from '../../remote/connection.js'
import {scrapeTargets} from '../../engine/desired.js'
import {vipHolders, vipOf} from '../../components/keepalived/index.js'
import {runnerCache} from '../../remote/runner.js'

export default class MonitorStatusCommand extends FoobarCommand<typeof MonitorStatusCommand> {
  static summary =
    'Each monitoring client: up or down, its last scrape and its version (from Prometheus, else over SSH). Exit 3 when any is down.'

  static flags = {...connectFlags, limit: limitFlag}

  async run(): Promise<MonitorStatus & {vip?: {address: string; holders: string[]; unreachable: string[]}}> {
    const inv = await loadInventory(this.flags.inventory)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts)
    const transport = sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']})
    const status = await monitorStatus(inv, hosts, scrapeTargets(STACK, inv), {concurrency: this.flags.concurrency, transport})
    // The load balancers' floating address: which of them (of those selected) holds it now.
    const address = vipOf(inv)
    let vip: {address: string; holders: string[]; unreachable: string[]} | undefined
    if (address && hosts.some((h) => h.roles.includes('lb'))) {
      const conns = runnerCache(transport)
      try {
        vip = {address, ...(await vipHolders(inv, (h) => conns.get(h), hosts))}
      } finally {
        conns.closeAll()
      }
      const held = vip.holders.length ? `held by ${vip.holders.join(' and ')}` : 'held by no load balancer'
      this.say(`floating address ${address}: ${held}${vip.unreachable.length ? ` (not reached: ${vip.unreachable.join(', ')})` : ''}`)
      if (vip.holders.length !== 1) this.warn(`floating address ${address}: ${held}`)
    }
    this.say(`clients read ${status.source === 'prometheus' ? 'from Prometheus on the monitoring host' : 'over SSH (no monitoring host)'}`)
    for (const c of status.clients) {
      const when = c.lastScrape ? `last scrape ${c.lastScrape}` : 'never scraped'
      this.say(
        `${c.host.padEnd(10)} ${c.job.padEnd(8)} ${c.target.padEnd(22)} ${c.up ? 'up  ' : 'DOWN'}  ${when}  ${c.version ?? ''}${c.error ? `  (${c.error})` : ''}`,
      )
    }
    const down = status.clients.filter((c) => !c.up)
    if (down.length > 0) {
      const failed = Object.fromEntries(down.map((c) => [`${c.host} ${c.job}`, c.error ?? 'down']))
      const message = `monitoring clients down: ${down.map((c) => `${c.host} ${c.job}`).join(', ')}`
      this.outcome({...status, vip}, down.length === status.clients.length ? ExitCode.failure : ExitCode.partial, message, {
        failed,
        quiet: true,
      })
    }
    return vip ? {...status, vip} : status
  }
}
