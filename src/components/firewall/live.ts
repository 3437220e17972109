import type {Host} from '../../inventory/index.js'
import type {FirewallRule} from './rules.js'
import {familyOf} from './rules.js'
import {shq} from '../../util/shell.js'

/*
 * The firewall as it is live on the host, compared with the desired rules (pure). ufw is read from its own rule
 * files (`### tuple ###` lines) and its status; iptables from iptables-save, normalised.
 */

export const APPLIED_DIR = '/var/lib/foobar/firewall'
/** The rendered ufw rules, a ufw command a line: written by the component, read by the activation. */
export const UFW_RULES_FILE = '/etc/foobar/firewall/ufw.rules'

/**
 * ufw's facts from `iptables -S` and `ip6tables -S` on stdin, then /etc/default/ufw and ufw's rule files (those
 * that exist; awk's variable `defaults` names the first): "status"
 * (active when ufw's three user chains are loaded, as ufw itself decides; empty without ufw), "policy" (the value
 * of DEFAULT_INPUT_POLICY="..."), then a "tuple" line for each `### tuple ###` line, in the files' order, then a
 * "foreign v4|v6" line for each rule in a built-in chain that is not ufw's (ufw leaves them, ahead of its own).
 */
const UFW_AWK = [
  // stdin: iptables -S, a "-- v6" line, ip6tables -S.
  `FILENAME == "-" { if ($0 == "-- v6") { fam = 6; next } if ($0 ~ /^-N ufw-user-(input|output|forward)$/) n++; if ($0 ~ /^-A (INPUT|FORWARD|OUTPUT) / && $0 !~ / -j ufw6?-/ && $0 != "-A INPUT -i lo -j ACCEPT" && $0 != "-A OUTPUT -o lo -j ACCEPT") f[++m] = "foreign v" (fam ? fam : 4) " " $0; next }`,
  // The value between the opening quote and the line's last quote (what sed's greedy \(.*\)" took), with what follows it.
  `FILENAME == defaults { if ($0 ~ /^DEFAULT_INPUT_POLICY=".*"/) { v = substr($0, 23); i = length(v); while (substr(v, i, 1) != "\\"") i--; p = p (d++ ? "\\n" : "") substr(v, 1, i - 1) substr(v, i + 1) } next }`,
  `/^### tuple ### / { t[++k] = "tuple " substr($0, 15) }`,
  `END { print "status " (u == "" ? "" : n == 3 ? "active" : "inactive"); print "policy " p; for (j = 1; j <= k; j++) print t[j]; for (j = 1; j <= m; j++) print f[j] }`,
].join('\n')

/** ufw's files read for its facts (a test gives its own). */
const UFW_FILES = {defaults: '/etc/default/ufw', rules: ['/etc/ufw/user.rules', '/etc/ufw/user6.rules']}

/** Shell lines for the facts script: untagged (the engine tags them). */
export function firewallFactsScript(host: Host, files: {defaults: string; rules: string[]} = UFW_FILES): string {
  if (host.firewall.backend === 'ufw') {
    return [
      // What `ufw status` says on its first line, without its Python start (77 of a facts round trip's 130 ms, measured):
      // ufw calls itself active when its user chains are loaded (backend_iptables.get_status), read here in one call.
      // The chains, the input policy (/etc/default/ufw) and the rules' tuples (ufw's own files) are read by one awk:
      // a grep, two seds and a cat before, each process about 8 ms of a lab host's CPU (issue 20).
      `if command -v ufw >/dev/null; then fb_u=1; else fb_u=; fi`,
      `set --; for fb_f in ${[files.defaults, ...files.rules].map(shq).join(' ')}; do if [ -f "$fb_f" ]; then set -- "$@" "$fb_f"; fi; done`,
      `{ ! command -v iptables >/dev/null || { iptables -S; echo '-- v6'; ip6tables -S; } 2>/dev/null; } | awk -v u="$fb_u" -v defaults=${shq(files.defaults)} ${shq(UFW_AWK)} - "$@" 2>/dev/null`,
    ].join('\n')
  }
  return [
    `command -v iptables-save >/dev/null && iptables-save -t filter | sed -e '/^#/d' -e 's/ \\[[0-9]*:[0-9]*\\]$//' -e 's/^/v4 /'`,
    `command -v ip6tables-save >/dev/null && ip6tables-save -t filter | sed -e '/^#/d' -e 's/ \\[[0-9]*:[0-9]*\\]$//' -e 's/^/v6 /'`,
    'true',
  ].join('\n')
}

export interface LiveFirewall {
  status?: string
  policy?: string
  tuples: string[]
  v4: string[]
  v6: string[]
  /** ufw backend: rules in the built-in chains that are not ufw's jumps (`v4 -A INPUT ...`). */
  foreign: string[]
}

export function parseFirewallFacts(lines: string[]): LiveFirewall {
  const live: LiveFirewall = {tuples: [], v4: [], v6: [], foreign: []}
  for (const line of lines) {
    const [kind, ...rest] = line.split(' ')
    const value = rest.join(' ')
    if (kind === 'status') live.status = value.trim()
    else if (kind === 'policy') live.policy = value.trim()
    else if (kind === 'tuple') live.tuples.push(value)
    else if (kind === 'v4') live.v4.push(value)
    else if (kind === 'v6') live.v6.push(value)
    else if (kind === 'foreign') live.foreign.push(value)
  }
  return live
}

const stripHostPrefix = (cidr: string) => cidr.replace(/\/32$/, '').replace(/\/128$/, '')

/** `allow tcp 22 from 10.0.0.1` keys, as ufw stores them (a bare address for a /32 or /128). */
export function desiredUfwKeys(rules: FirewallRule[], ipv6: boolean): string[] {
  const keys: string[] = []
  for (const r of rules) {
    // ufw records a portless protocol (vrrp) with the port `any`.
    const port = r.port ?? 'any'
    if (r.from.length === 0) {
      keys.push(`allow ${r.proto} ${port} from 0.0.0.0/0`)
      if (ipv6) keys.push(`allow ${r.proto} ${port} from ::/0`)
    } else {
      for (const src of r.from) if (ipv6 || familyOf(src) === 4) keys.push(`allow ${r.proto} ${port} from ${stripHostPrefix(src)}`)
    }
  }
  return [...new Set(keys)].sort()
}

/** `### tuple ### allow tcp 22 0.0.0.0/0 any 10.77.0.1 in comment=...` -> `allow tcp 22 from 10.77.0.1` */
export function liveUfwKeys(tuples: string[]): string[] {
  return [
    ...new Set(
      tuples.map((t) => {
        const [action, proto, dport, , , src, direction] = t.split(' ')
        return `${action}${direction === 'in' ? '' : ` ${direction}`} ${proto} ${dport} from ${src}`
      }),
    ),
  ].sort()
}

/** iptables-restore text in the form iptables-save prints: no comments, no counters. */
export function normaliseRules(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map(normaliseRule)
}

/** iptables-save drops counters' meaning and quotes a comment only when it has a space: compare without either. */
export function normaliseRule(line: string): string {
  return line.replace(/ \[\d+:\d+\]$/, '').replace(/--comment "([^" ]+)"/, '--comment $1')
}

export interface FirewallDrift {
  inSync: boolean
  missing: string[]
  extra: string[]
  notes: string[]
}

export function compareFirewall(
  host: Host,
  rules: FirewallRule[],
  live: LiveFirewall,
  desiredFiles: {v4?: string; v6?: string},
): FirewallDrift {
  const notes: string[] = []
  let missing: string[]
  let extra: string[]
  if (host.firewall.backend === 'ufw') {
    if (live.status !== 'active') notes.push(`ufw is ${live.status || 'not installed'}`)
    if (live.policy !== 'DROP') notes.push(`default incoming policy is ${live.policy || 'unknown'}, want DROP`)
    const want = desiredUfwKeys(rules, host.firewall.ipv6)
    const have = liveUfwKeys(live.tuples)
    missing = want.filter((k) => !have.includes(k))
    extra = have.filter((k) => !want.includes(k))
    // Rules ahead of ufw's jumps decide first: left by the iptables backend (or another tool), they still accept.
    if (live.foreign.length) notes.push(`${live.foreign.length} rules in the built-in chains outside ufw`)
    extra.push(...live.foreign)
  } else {
    const want = [
      ...normaliseRules(desiredFiles.v4 ?? '').map((l) => `v4 ${l}`),
      ...normaliseRules(desiredFiles.v6 ?? '').map((l) => `v6 ${l}`),
    ]
    const have = [...live.v4.map((l) => `v4 ${normaliseRule(l)}`), ...live.v6.map((l) => `v6 ${normaliseRule(l)}`)]
    missing = want.filter((k) => !have.includes(k))
    extra = have.filter((k) => !want.includes(k))
    if (have.length === 0) notes.push('no iptables rules loaded')
  }
  return {inSync: notes.length === 0 && missing.length === 0 && extra.length === 0, missing, extra, notes}
}
