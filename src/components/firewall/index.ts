import type {Check, Component, ComponentState, DesiredFile, HostContext, LiveAction, PortRule} from '../../engine/contract.js'
import {file} from '../../engine/contract.js'
import type {Host} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {activateFirewall} from './activate.js'
import {type FirewallDrift, UFW_RULES_FILE, compareFirewall, firewallFactsScript, parseFirewallFacts} from './live.js'
import {type FirewallRule, firewallRules, sourcesFor} from './rules.js'

export {firewallRules, type FirewallRule} from './rules.js'

/** Pseudo-service notified by rule files: activation is the firewall's own step (with the automatic revert). */
export const FIREWALL = 'firewall'

export {UFW_RULES_FILE} from './live.js'
export const IPTABLES_V4_FILE = '/etc/iptables/rules.v4'
export const IPTABLES_V6_FILE = '/etc/iptables/rules.v6'

/** One line per (rule, source): what ufw and iptables need. */
function expand(rules: FirewallRule[], family?: 4 | 6) {
  return rules.flatMap((r) => {
    const from = family === undefined ? r.from : sourcesFor(r, family)
    if (from === undefined) return []
    return (from.length ? from : ['']).map((src) => ({port: r.port, proto: r.proto, from: src, comment: r.comment}))
  })
}

export function renderFirewall(host: Host, rules: FirewallRule[]): ComponentState {
  const common = {host: host.name, roles: host.roles.join(', ')}
  if (host.firewall.backend === 'ufw') {
    return {
      packages: ['ufw'],
      files: [
        file(UFW_RULES_FILE, renderTemplate('firewall/ufw.rules', {...common, rules: expand(rules)}), {mode: 0o640, notify: [FIREWALL]}),
      ],
      // The iptables backend's files (a host switched from it): netfilter-persistent would load them again at boot.
      absent: [IPTABLES_V4_FILE, IPTABLES_V6_FILE],
      services: [],
    }
  }
  // With IPv6 off the v6 table still loads: default deny, nothing opened.
  const rulesFor = (family: 4 | 6) =>
    renderTemplate('firewall/rules', {
      ...common,
      family,
      v6: family === 6,
      rules: family === 6 && !host.firewall.ipv6 ? [] : expand(rules, family),
    })
  return {
    packages: ['iptables', 'netfilter-persistent', 'iptables-persistent'],
    files: [
      file(IPTABLES_V4_FILE, rulesFor(4), {
        mode: 0o640,
        notify: [FIREWALL],
        validate: {mode: 'candidate', command: 'iptables-restore --test {}'},
      }),
      file(IPTABLES_V6_FILE, rulesFor(6), {
        mode: 0o640,
        notify: [FIREWALL],
        validate: {mode: 'candidate', command: 'ip6tables-restore --test {}'},
      }),
    ],
    absent: [],
    services: [],
  }
}

/**
 * The desired rules and iptables files, as the live firewall is compared with them. `files`: the host's desired
 * files when they are rendered already (the plan); else they are rendered here (`firewall status`).
 */
export function desiredRules(ctx: HostContext & {ports: PortRule[]; controlAddress?: string; files?: DesiredFile[]}) {
  const rules = firewallRules(ctx.host, ctx.ports, ctx.controlAddress)
  const files = ctx.files ?? renderFirewall(ctx.host, rules).files
  const content = (path: string) => files.find((f) => f.path === path)?.content
  return {rules, v4: content(IPTABLES_V4_FILE), v6: content(IPTABLES_V6_FILE)}
}

/** The firewall's drift as one live action (activate with the automatic revert), or none when in sync. */
function planFirewall(host: Host, drift: FirewallDrift, rulesChanged: boolean): LiveAction[] {
  if (!rulesChanged && drift.inSync) return []
  const reason =
    [
      ...drift.notes,
      ...(drift.missing.length ? [`${drift.missing.length} rules missing`] : []),
      ...(drift.extra.length ? [`${drift.extra.length} rules not in the inventory`] : []),
    ].join(', ') || 'rules changed'
  return [
    {
      kind: 'activate',
      summary: `activate the ${host.firewall.backend} firewall (${reason})`,
      detail: [...drift.missing.map((m) => `+ ${m}`), ...drift.extra.map((m) => `- ${m}`)],
      data: {backend: host.firewall.backend, reason, missing: drift.missing, extra: drift.extra},
      guarded: true,
      ownCheck: true,
      apply: (h) => activateFirewall(h.runner, host, h.written, h.restoreScript, h.freshConnection, h.step),
    },
  ]
}

/**
 * The host firewall (ufw or iptables): the rules come from the ports every component declares, SSH from the
 * admin networks and the control address, and the inventory's extra ports. Activated last, behind an automatic
 * revert on the host that only a fresh SSH connection cancels.
 */
export const firewall: Component = {
  name: 'firewall',
  // Its activation is the host's last step: a host whose services or sshd change failed is not also re-firewalled.
  after: ['hardening'],
  appliesTo: () => true,
  desired: (ctx) => renderFirewall(ctx.host, firewallRules(ctx.host, ctx.ports, ctx.controlAddress)),
  live: {
    prepare: () => ({
      script: ({host}) => firewallFactsScript(host),
      plan: (ctx, lines) => {
        const want = desiredRules(ctx)
        return planFirewall(ctx.host, compareFirewall(ctx.host, want.rules, parseFirewallFacts(lines), want), ctx.notified.has(FIREWALL))
      },
    }),
  },
  checks: (ctx): Check[] => [
    {
      name: 'firewall',
      run: async () => {
        const fw = (await ctx.plan()).changes.find((c) => c.kind === 'live' && c.component === 'firewall')
        if (!fw || fw.kind !== 'live') return {ok: true, detail: `${ctx.host.firewall.backend} active, rules as in the inventory`}
        ctx.facts.drop()
        return {ok: false, detail: `drift: ${String(fw.action.data?.reason ?? fw.action.summary)}`}
      },
    },
  ],
}
