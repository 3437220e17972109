import type {Check, CheckContext, Component, Failover, HostPlan} from '../../engine/contract.js'
import {file} from '../../engine/contract.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {Failure, UserError} from '../../util/errors.js'
import {hostCidr} from '../../util/address.js'
import {httpsProbe} from '../../util/probes.js'
import {shq} from '../../util/shell.js'
import {sleep} from '../../util/wait.js'
import {LB_SERVING_PATH} from '../haproxy/index.js'
import {PORTS} from '../ports.js'
import {holds, placement, sharingLbs, discoverScript, vipHolders, waitReady} from './vip.js'

export {sharingLbs, vipHolders, vipOf} from './vip.js'

export const KEEPALIVED_CONF = '/etc/keepalived/keepalived.conf'
export const CHECK_SCRIPT = '/etc/keepalived/foobar-check-haproxy'
export const NOTIFY_SCRIPT = '/etc/keepalived/foobar-notify'
const SERVICE = 'keepalived'

/** VRRPv2 carries 8 bytes of password (keepalived would cut a longer one silently); no config syntax. */
const PASSWORD = /^[A-Za-z0-9._~+=,:*@-]{1,8}$/

function vrrpPassword(host: Host): string {
  const value = readSecret(host.lb.vrrp?.password, 'lb.vrrp.password')
  if (!PASSWORD.test(value))
    throw new UserError(
      'lb.vrrp.password: must be 1-8 characters of letters, digits and . _ ~ + = , : * @ - (VRRPv2 carries 8; the secret itself is not shown)',
    )
  return value
}

/** Where the address is offline (`foobar render` asks no host): lb.vip_interface, else a name that says so. */
const OFFLINE = {iface: 'read-on-the-host', prefix: 32}

/** The other load balancers of the host's address family: its VRRP peers. */
const peersOf = (inv: Inventory, host: Host) => sharingLbs(inv).filter((h) => h !== host && h.family === host.family)

/** A change that would interrupt HAProxy or keepalived on the host (packages, a restart): the address moves away first. */
const interrupts = (plan: HostPlan) => plan.changes.some((c) => c.kind === 'packages' || (c.kind === 'reload' && c.how === 'restart'))

/** How long a peer has to serve through the address after keepalived stops on the holder (a setting for tests). */
export const HANDOVER = {timeoutMs: 15_000, everyMs: 500}

/** The site through the address, from the host that gave it up: answered by a peer. */
const servedThrough = (inv: Inventory, vip: string) =>
  `curl -sSk -o /dev/null --max-time 1 --resolve ${shq(`${inv.site.domain}:${PORTS.https}:${vip}`)} ${shq(`https://${inv.site.domain}/`)}`

const failover: Failover = {
  holds,
  handOver: async ({runner, plan, inventory, step}) => {
    const vip = runner.host.lb.vip
    const peers = peersOf(inventory, runner.host)
    if (!vip || peers.length === 0 || !interrupts(plan) || !(await holds(runner))) return undefined
    step(`handing ${vip} over to ${peers.map((p) => p.name).join(' or ')} before the change (keepalived stopped here)`)
    await runner.run(`systemctl stop ${SERVICE}`)
    const deadline = Date.now() + HANDOVER.timeoutMs
    for (;;) {
      const gone = !(await holds(runner))
      if (gone && (await runner.run(servedThrough(inventory, vip), {check: false})).code === 0) break
      if (Date.now() > deadline) {
        await runner.run(`systemctl start ${SERVICE}`, {check: false})
        throw new Failure(
          `${runner.host.name}: no other load balancer served ${vip} within ${HANDOVER.timeoutMs / 1000}s of keepalived stopping here (keepalived started again)`,
        )
      }
      await sleep(HANDOVER.everyMs)
    }
    return async () => {
      await runner.run(`systemctl start ${SERVICE}`)
    }
  },
  ready: (runner, timeoutMs) => waitReady(runner, KEEPALIVED_CONF, CHECK_SCRIPT, timeoutMs),
}

function checks(ctx: CheckContext): Check[] {
  const {inventory: inv, host} = ctx
  const vip = host.lb.vip!
  return [
    {
      name: 'keepalived config valid',
      run: async () => {
        const r = await ctx.runner.run(`keepalived -t -f ${KEEPALIVED_CONF}`, {check: false})
        return r.code === 0
          ? {ok: true, detail: `keepalived -t: ${KEEPALIVED_CONF} valid`}
          : {ok: false, detail: (r.stderr || r.stdout).trim().split('\n').pop() || `keepalived -t exit ${r.code}`}
      },
    },
    {
      name: 'floating address',
      run: async () => {
        const {holders, unreachable} = await vipHolders(inv, ctx.connect)
        const role = holders.includes(host.name) ? 'this host' : 'this host stands by'
        const note = unreachable.length ? `; not reached: ${unreachable.join(', ')}` : ''
        if (holders.length === 1) return {ok: true, detail: `${vip} held by ${holders[0]} (${role})${note}`}
        return holders.length === 0
          ? {ok: false, detail: `no load balancer holds ${vip}${note}`}
          : {ok: false, detail: `${vip} held by ${holders.join(' and ')} at once: they do not hear each other over VRRP${note}`}
      },
    },
    {
      name: 'https through the floating address',
      run: async () => {
        const r = await httpsProbe(vip, PORTS.https, inv.site.domain, host.lb.healthCheck, ctx.material.backendCa)
        return r.status === 200
          ? {ok: true, detail: `https://${inv.site.domain}${host.lb.healthCheck} at ${vip}: 200 (${r.body.trim()})`}
          : {ok: false, detail: `https://${inv.site.domain}${host.lb.healthCheck} at ${vip}: HTTP ${r.status}`}
      },
    },
  ]
}

/**
 * keepalived on every load balancer when lb.vip is set: the floating address on the healthy one (VRRP, unicast
 * between the load balancers, password-authenticated and admitted by their firewalls alone), a track script that
 * gives it up when the local HAProxy does not serve, non-preemptive unless lb.vrrp.preempt, transitions to the
 * journal. As the failover provider it makes the load balancers' changes roll one at a time, the standby first.
 */
export const keepalived: Component = {
  name: 'keepalived',
  after: ['haproxy'],
  appliesTo: (host) => host.roles.includes('lb') && host.lb.vip !== undefined,
  secrets: ({host}) => [{field: 'lb.vrrp.password', ref: host.lb.vrrp?.password}],
  discover: ({host}) => discoverScript(host),
  ports: ({inventory, host}) => {
    const peers = peersOf(inventory, host)
    return peers.length ? [{proto: 'vrrp', from: peers.map(hostCidr), comment: 'vrrp from the other load balancers'}] : []
  },
  desired: ({inventory, host, material, discovered}) => {
    const lbs = sharingLbs(inventory)
    const vip = host.lb.vip!
    const where = discovered ? placement(host, discovered) : {...OFFLINE, iface: host.lb.vipInterface ?? OFFLINE.iface}
    const peers = peersOf(inventory, host).map((p) => p.address)
    // Read only for a real run (TLS material present): `foobar render` writes no secret file.
    const password = material ? vrrpPassword(host) : 'offline'
    const common = {host: host.name, domain: inventory.site.domain, vip}
    return {
      packages: ['keepalived', 'curl'],
      files: [
        // Before the config: keepalived -t checks the scripts it names.
        file(CHECK_SCRIPT, renderTemplate('keepalived/check-haproxy', {...common, servingPath: LB_SERVING_PATH}), {
          mode: 0o755,
          notify: [SERVICE],
        }),
        file(NOTIFY_SCRIPT, renderTemplate('keepalived/notify', common), {mode: 0o755, notify: [SERVICE]}),
        file(
          KEEPALIVED_CONF,
          renderTemplate('keepalived/keepalived.conf', {
            ...common,
            lbs: lbs.map((h) => h.name).join(', '),
            address: host.address,
            interface: where.iface,
            prefix: where.prefix,
            routerId: host.lb.vrrp!.routerId,
            // The first load balancer of the inventory wins the first election; nopreempt keeps the address where it is after that.
            priority: Math.max(1, 150 - 10 * lbs.indexOf(host)),
            nopreempt: !host.lb.vrrp!.preempt,
            hasPeers: peers.length > 0,
            peers,
            password,
            checkScript: CHECK_SCRIPT,
            notifyScript: NOTIFY_SCRIPT,
          }),
          {mode: 0o640, secret: true, notify: [SERVICE], validate: {mode: 'candidate', command: 'keepalived -t -f {}'}},
        ),
      ],
      absent: [],
      // Healthy: HAProxy serves here, so this host could hold the address.
      services: [{name: SERVICE, onChange: 'reload', health: CHECK_SCRIPT}],
    }
  },
  checks,
  failover,
}
