import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {type Component, type ComponentState, file} from '../types.js'
import {type FirewallRule, firewallRules, sourcesFor} from './rules.js'

export {firewallRules, type FirewallRule} from './rules.js'

/** Pseudo-service notified by rule files: activation is the firewall's own step (with the automatic revert). */
export const FIREWALL = 'firewall'

export const UFW_RULES_FILE = '/etc/foobar/firewall/ufw.rules'
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

export function renderFirewall(inv: Inventory, host: Host, controlAddress?: string): ComponentState {
  const rules = firewallRules(inv, host, controlAddress)
  const common = {host: host.name, roles: host.roles.join(', ')}
  if (host.firewall.backend === 'ufw') {
    return {
      packages: ['ufw'],
      files: [file(UFW_RULES_FILE, renderTemplate('firewall/ufw.rules', {...common, rules: expand(rules)}), {mode: 0o640, notify: [FIREWALL]})],
      absent: [],
      services: [],
    }
  }
  // With IPv6 off the v6 table still loads: default deny, nothing opened.
  const rulesFor = (family: 4 | 6) =>
    renderTemplate('firewall/rules', {...common, family, v6: family === 6, rules: family === 6 && !host.firewall.ipv6 ? [] : expand(rules, family)})
  return {
    packages: ['iptables', 'netfilter-persistent', 'iptables-persistent'],
    files: [
      file(IPTABLES_V4_FILE, rulesFor(4), {mode: 0o640, notify: [FIREWALL], validate: {mode: 'candidate', command: 'iptables-restore --test {}'}}),
      file(IPTABLES_V6_FILE, rulesFor(6), {mode: 0o640, notify: [FIREWALL], validate: {mode: 'candidate', command: 'ip6tables-restore --test {}'}}),
    ],
    absent: [],
    services: [],
  }
}

export const firewall: Component = {
  name: 'firewall',
  appliesTo: () => true,
  desired: ({inventory, host, controlAddress}) => renderFirewall(inventory, host, controlAddress),
}
