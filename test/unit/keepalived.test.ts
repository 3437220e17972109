/*
 * Two load balancers sharing a floating address (issue 18): lb.vip and lb.vrrp in the inventory, keepalived's
 * config for each load balancer (from the interface read on the host), the VRRP firewall rules, and nothing of it
 * without a vip. (keepalived -t, haproxy -c, ufw and iptables-restore on these files: checkers.test.ts; the engine's
 * order of the load balancers' changes: engine-failover.test.ts.)
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {firewallRules, renderFirewall} from '../../src/components/firewall/index.js'
import {HAPROXY_CFG, LB_SERVING_PATH} from '../../src/components/haproxy/index.js'
import {STACK, desiredState} from '../../src/components/index.js'
import {CHECK_SCRIPT, KEEPALIVED_CONF, NOTIFY_SCRIPT} from '../../src/components/keepalived/index.js'
import {discoveryParts, hostPorts} from '../../src/engine/desired.js'
import {discoveryScript, parseDiscovery} from '../../src/engine/facts.js'
import {type Host, type Inventory, InventoryError, governedPorts, parseInventory} from '../../src/inventory/index.js'
import {dnsRecords} from '../../src/lab/index.js'
import {fileOf, loadExample, renderAll} from './support/render.js'

const ENV = 'FOOBAR_TEST_VRRP'
const FILE = '/srv/inv/ha.yml'
const MATERIAL = {siteChain: '', siteKey: '', backendCa: '', internalCa: '', leaves: {}}

beforeAll(() => {
  process.env[ENV] = 'vrrp-pw1'
})
afterAll(() => {
  delete process.env[ENV]
})

const ha = (edit: (t: string) => string = (t) => t) =>
  loadExample('lab-ha', (t) => edit(t.replace('{file: /var/lib/foobar-lab/secrets/vrrp_password}', `{env: ${ENV}}`)))
const host = (inv: Inventory, name: string): Host => inv.hosts.find((h) => h.name === name)!
/** What `ip -o addr show to ADDRESS` prints on a lab host: eth0 holds its address on the bridge's /24. */
const onEth0 = (h: Host, dev = 'eth0', prefix = 24) => [
  `2: ${dev}    inet ${h.address}/${prefix} brd 10.77.0.255 scope global ${dev}\\       valid_lft forever preferred_lft forever`,
]
const files = (inv: Inventory, name: string, discovered = onEth0(host(inv, name))) =>
  desiredState(inv, host(inv, name), {material: MATERIAL, discovered: {keepalived: discovered}}).files
const conf = (inv: Inventory, name: string, discovered?: string[]) => files(inv, name, discovered).find((f) => f.path === KEEPALIVED_CONF)!

function problems(text: string) {
  try {
    parseInventory(text, FILE)
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryError)
    return (error as InventoryError).problems
  }
  throw new Error('expected the inventory to be rejected')
}

/** Two load balancers in front of one web server; `lb` is the top-level lb section, `extra` goes after it. */
const stack = (lb: string, hosts = '') => `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
${lb}
hosts:
  - {name: lb1, address: 10.0.0.11, roles: [lb]}
  - {name: lb2, address: 10.0.0.12, roles: [lb]${hosts}}
  - {name: web1, address: 10.0.0.21, roles: [web]}
`
const withVip = (vrrp = '{password: {env: VRRP_PW}}', vip = '10.0.0.100') => stack(`lb: {vip: ${vip}, vrrp: ${vrrp}}`)

describe('inventory: lb.vip and lb.vrrp', () => {
  test('lab-ha.yml: both load balancers share the vip, with the defaults filled in; no warning', () => {
    const inv = ha()
    expect(inv.warnings).toBeUndefined()
    for (const lb of ['lb1', 'lb2']) {
      expect(host(inv, lb).lb).toMatchObject({vip: '10.77.0.100', vrrp: {routerId: 51, preempt: false, password: {env: ENV}}})
      expect(host(inv, lb).lb.vipInterface).toBeUndefined()
    }
    const defaults = parseInventory(withVip(), FILE)
    expect(host(defaults, 'lb1').lb.vrrp).toEqual({routerId: 51, preempt: false, password: {env: 'VRRP_PW'}})
  })

  test('without a vip nothing of it is in the model; two load balancers without one is a warning', () => {
    expect(host(loadExample('lab'), 'lb1').lb).toEqual({balance: 'roundrobin', healthCheck: '/healthz', reencrypt: true, backendPort: 443})
    expect(parseInventory(stack(''), FILE).warnings).toEqual([
      'lb: lb1, lb2 have the lb role but no lb.vip: each serves on its own address, and clients must be sent to them (DNS); set lb.vip for a floating address that moves to a healthy one',
    ])
  })

  test('a vip with one load balancer is a warning: nothing to fail over to', () => {
    const one = parseInventory(withVip().replace(/ {2}- \{name: lb2.*\n/, ''), FILE)
    expect(one.warnings).toEqual(['lb.vip 10.0.0.100 with one load balancer (lb1): there is no other to take the address over'])
  })

  test.each([
    ['a host address', withVip(undefined, '10.0.0.21'), 'lb.vip', '"10.0.0.21" is web1\'s own address'],
    ['IPv6', withVip(undefined, '"2001:db8::100"'), 'lb.vip', 'only IPv4 is supported'],
    ['loopback', withVip(undefined, '127.0.0.1'), 'lb.vip', 'loopback'],
    ['no password', withVip('{router_id: 7}'), 'lb.vrrp', 'lb.vrrp.password is required with lb.vip'],
    ['router id 0', withVip('{router_id: 0, password: {env: X}}'), 'lb.vrrp.router_id', 'must be from 1 to 255'],
    ['router id 256', withVip('{router_id: 256, password: {env: X}}'), 'lb.vrrp.router_id', 'must be from 1 to 255'],
    ['a password in clear', withVip('{password: hunter2}'), 'lb.vrrp.password', 'secret reference'],
    [
      'an interface name with shell syntax',
      stack('lb: {vip: 10.0.0.100, vip_interface: "eth0;reboot", vrrp: {password: {env: X}}}'),
      'lb.vip_interface',
      'must be a network interface name',
    ],
  ])('%s is refused at the field', (_what, text, field, message) => {
    const found = problems(text).filter((p) => p.field === field)
    expect(found.map((p) => p.message).join('\n')).toContain(message)
    expect(found[0]!.location).toMatch(/^\/srv\/inv\/ha\.yml:\d+:\d+$/)
  })

  test('every load balancer shares one vip and one VRRP exchange: a host that differs is named', () => {
    const differing = stack('lb: {vip: 10.0.0.100, vrrp: {password: {env: X}}}', ', lb: {vip: 10.0.0.101, vrrp: {router_id: 9}}')
    const found = problems(differing)
    expect(found.find((p) => p.field === 'hosts[1].lb.vip')?.message).toBe(
      "lb2's lb.vip 10.0.0.101 differs from lb1's 10.0.0.100: the load balancers share one floating address; set it once, at the top level or in roles.lb",
    )
    expect(found.find((p) => p.field === 'hosts[1].lb.vrrp.router_id')?.message).toMatch(/^lb2's lb.vrrp.router_id differs from lb1's/)
    const onlyOne = stack('', ', lb: {vip: 10.0.0.100, vrrp: {password: {env: X}}}')
    expect(problems(onlyOne).find((p) => p.field === 'hosts[0].roles')?.message).toMatch(
      /^lb1 is a load balancer without lb.vip, but lb2 has 10.0.0.100/,
    )
  })

  test('the password is a secret reference replaced whole across layers ({file} over {env} is not both)', () => {
    const text = withVip('{password: {file: /srv/top-secret}}').replace(
      'hosts:',
      'roles:\n  lb: {lb: {vrrp: {password: {env: ROLE_PW}}}}\nhosts:',
    )
    expect(host(parseInventory(text, FILE), 'lb2').lb.vrrp!.password).toEqual({env: 'ROLE_PW'})
  })

  test('VRRP is governed on the load balancers sharing a vip (and every rule the stack opens is governed)', () => {
    const inv = ha()
    const key = (p: {port?: number; proto: string}) => (p.port === undefined ? p.proto : `${p.port}/${p.proto}`)
    for (const h of inv.hosts) {
      const governed = governedPorts(inv, h).map(key)
      expect(governed.includes('vrrp'), h.name).toBe(h.roles.includes('lb'))
      for (const p of hostPorts(STACK, inv, h)) expect(governed, `${h.name} ${key(p)}`).toContain(key(p))
    }
  })
})

describe('keepalived on each load balancer', () => {
  test('nothing without a vip: no keepalived, no serving path in haproxy.cfg, no VRRP rule (lab.yml)', () => {
    const lab = loadExample('lab')
    for (const h of lab.hosts) expect(desiredState(lab, h).components, h.name).not.toContain('keepalived')
    expect(fileOf(renderAll(lab), 'lb1', HAPROXY_CFG)).not.toContain(LB_SERVING_PATH)
    expect(firewallRules(host(lab, 'lb1'), hostPorts(STACK, lab, host(lab, 'lb1'))).some((r) => r.proto === 'vrrp')).toBe(false)
    expect(discoveryParts(STACK, lab, host(lab, 'lb1'))).toEqual([])
  })

  test('on the load balancers only, with the scripts it names and a config 0640, secret, checked by keepalived -t', () => {
    const inv = ha()
    for (const h of inv.hosts) expect(desiredState(inv, h).components.includes('keepalived'), h.name).toBe(h.roles.includes('lb'))
    const fs = files(inv, 'lb1')
    const byPath = (p: string) => fs.find((f) => f.path === p)!
    expect(byPath(KEEPALIVED_CONF)).toMatchObject({
      mode: 0o640,
      secret: true,
      notify: ['keepalived'],
      validate: {mode: 'candidate', command: 'keepalived -t -f {}'},
    })
    // The scripts come first: keepalived -t checks the files the config names.
    const order = fs.map((f) => f.path)
    expect(order.indexOf(CHECK_SCRIPT)).toBeLessThan(order.indexOf(KEEPALIVED_CONF))
    expect(order.indexOf(NOTIFY_SCRIPT)).toBeLessThan(order.indexOf(KEEPALIVED_CONF))
    expect(byPath(CHECK_SCRIPT).mode).toBe(0o755)
    expect(byPath(CHECK_SCRIPT).secret).toBeFalsy()
    expect(byPath(CHECK_SCRIPT).content).toContain(
      `exec curl -fsSk -o /dev/null --max-time 1 --resolve 'www.foobar.test:443:127.0.0.1' 'https://www.foobar.test${LB_SERVING_PATH}'`,
    )
    expect(byPath(NOTIFY_SCRIPT).content).toContain('logger -t foobar-vip -p daemon.notice "lb1 is now $3 for 10.77.0.100')
    // HAProxy answers that path itself, to the host only.
    expect(fileOf(renderAll(inv), 'lb2', HAPROXY_CFG)).toContain(
      `http-request return status 200 content-type text/plain string serving if { path ${LB_SERVING_PATH} } { src 127.0.0.1 ::1 }`,
    )
  })

  test('lb1 and lb2: unicast to each other, the address on the interface that holds theirs, nopreempt, the password', () => {
    const inv = ha()
    const [lb1, lb2] = [conf(inv, 'lb1').content, conf(inv, 'lb2').content]
    for (const [text, self, peer, priority] of [
      [lb1, '10.77.0.11', '10.77.0.14', 150],
      [lb2, '10.77.0.14', '10.77.0.11', 140],
    ] as const) {
      expect(text).toContain(`    unicast_src_ip ${self}\n    unicast_peer {\n        ${peer}\n    }\n`)
      expect(text).toContain(`    priority ${priority}\n`)
      expect(text).toContain('    state BACKUP\n')
      expect(text).toMatch(/^ {4}nopreempt$/m)
      expect(text).toContain('    interface eth0\n')
      expect(text).toContain('    virtual_router_id 51\n')
      expect(text).toContain('        10.77.0.100/24 dev eth0\n')
      expect(text).toContain('        auth_type PASS\n        auth_pass vrrp-pw1\n')
      expect(text).toMatch(/PASS authentication is weak/)
      expect(text).toContain('    weight 0\n')
      expect(text).toContain(`    notify "${NOTIFY_SCRIPT}"\n`)
    }
    // The same apart from the host's own lines.
    const strip = (t: string) => t.replace(/lb[12]|10\.77\.0\.1[14]|priority \d+/g, 'X')
    expect(strip(lb1)).toBe(strip(lb2))
  })

  test("preempt: true drops nopreempt (still BACKUP everywhere); router_id is the inventory's", () => {
    const text = conf(
      ha((t) => t.replace('preempt: false', 'preempt: true').replace('router_id: 51', 'router_id: 77')),
      'lb1',
    ).content
    expect(text).not.toMatch(/nopreempt$/m)
    expect(text).toContain('    state BACKUP\n')
    expect(text).toContain('    virtual_router_id 77\n')
  })

  test('lb.vip_interface: the interface named, its networks read with ip -o -4 addr show dev', () => {
    const inv = ha((t) => t.replace('  vip: 10.77.0.100\n', '  vip: 10.77.0.100\n  vip_interface: ens4\n'))
    const lb1 = host(inv, 'lb1')
    const parts = discoveryParts(STACK, inv, lb1)
    expect(parts).toEqual([{component: 'keepalived', script: 'ip -o -4 addr show dev ens4'}])
    const text = conf(inv, 'lb1', onEth0(lb1, 'ens4', 16)).content
    expect(text).toContain('    interface ens4\n')
    expect(text).toContain('        10.77.0.100/16 dev ens4\n')
  })

  test('the interface is read on the host in one tagged round trip (none for a host without keepalived)', () => {
    const inv = ha()
    const parts = discoveryParts(STACK, inv, host(inv, 'lb1'))
    expect(parts).toEqual([{component: 'keepalived', script: 'ip -o addr show to 10.77.0.11'}])
    expect(discoveryScript(parts)).toBe("{\nip -o addr show to 10.77.0.11\ntrue\n} 2>/dev/null | sed 's/^/@@disc keepalived /'")
    expect(parseDiscovery('@@disc keepalived 2: eth0    inet 10.77.0.11/24\n@@disc other x\nnoise\n', parts)).toEqual({
      keepalived: ['2: eth0    inet 10.77.0.11/24'],
    })
    expect(discoveryParts(STACK, inv, host(inv, 'web1'))).toEqual([])
    expect(discoveryParts(STACK, inv, host(inv, 'lb1'), ['firewall'])).toEqual([])
  })

  test('an address no interface holds (NAT), or a vip off the network, is refused naming the host and the fix', () => {
    const inv = ha()
    expect(() => conf(inv, 'lb1', [])).toThrow(
      'lb1: no interface on the host holds its address 10.77.0.11 (behind a NAT?): set lb.vip_interface to the interface the floating address 10.77.0.100 belongs on',
    )
    expect(() => conf(inv, 'lb1', onEth0(host(inv, 'lb1'), 'eth0', 28))).toThrow(
      "lb1: lb.vip 10.77.0.100 is not on eth0's network (10.77.0.0/28): the floating address must be an unused address of the load balancers' network",
    )
  })

  test('a password VRRPv2 cannot carry is refused without showing it', () => {
    process.env[ENV] = 'much-too-long'
    try {
      expect(() => conf(ha(), 'lb1')).toThrow(/^lb\.vrrp\.password: must be 1-8 characters .*the secret itself is not shown\)$/)
      process.env[ENV] = 'pw"; x'
      expect(() => conf(ha(), 'lb1')).toThrow(/not shown/)
    } finally {
      process.env[ENV] = 'vrrp-pw1'
    }
  })

  test('foobar render (no host asked, no secret read): the scripts, not the secret config', () => {
    delete process.env[ENV]
    try {
      const rendered = renderAll(ha())
      const paths = rendered.get('lb1')!.map((f) => f.path)
      expect(paths).toContain(CHECK_SCRIPT)
      expect(paths).not.toContain(KEEPALIVED_CONF)
    } finally {
      process.env[ENV] = 'vrrp-pw1'
    }
  })
})

describe('firewall: VRRP (IP protocol 112) between the load balancers only', () => {
  const inv = ha()
  const rules = (inv2: Inventory, name: string) => firewallRules(host(inv2, name), hostPorts(STACK, inv2, host(inv2, name)))

  test('each load balancer admits VRRP from the other alone; no other host admits it', () => {
    expect(rules(inv, 'lb1').filter((r) => r.proto === 'vrrp')).toEqual([
      {proto: 'vrrp', from: ['10.77.0.14/32'], comment: 'vrrp from the other load balancers'},
    ])
    expect(rules(inv, 'lb2').find((r) => r.proto === 'vrrp')?.from).toEqual(['10.77.0.11/32'])
    for (const w of ['web1', 'web2'])
      expect(
        rules(inv, w).some((r) => r.proto === 'vrrp'),
        w,
      ).toBe(false)
    // After the ports.
    expect(rules(inv, 'lb1').at(-1)!.proto).toBe('vrrp')
  })

  test('ufw: allow in proto vrrp from the peer; iptables: -p vrrp from the peer in rules.v4, nothing in rules.v6', () => {
    const ufw = renderFirewall(host(inv, 'lb1'), rules(inv, 'lb1')).files[0]!.content
    expect(ufw).toContain("allow in proto vrrp from 10.77.0.14/32 comment 'vrrp from the other load balancers'\n")
    const ipt = ha((t) => t.replace('  backend: ufw\n', '  backend: iptables\n'))
    const [v4, v6] = renderFirewall(host(ipt, 'lb1'), rules(ipt, 'lb1')).files.map((f) => f.content)
    expect(v4).toContain('-A INPUT -s 10.77.0.14/32 -p vrrp -m comment --comment "vrrp from the other load balancers" -j ACCEPT\n')
    expect(v6).not.toContain('vrrp')
  })
})

describe('the lab', () => {
  test("lab up -i lab-ha.yml: four hosts; the site's DNS names on the floating address (else on the first load balancer)", () => {
    const inv = ha()
    const hosts = inv.hosts.map(({name, address, roles}) => ({name, address, roles}))
    const spec = {hosts, domain: inv.site.domain, aliases: inv.site.aliases}
    expect(hosts.map((h) => `${h.name} ${h.address}`)).toEqual(['lb1 10.77.0.11', 'web1 10.77.0.12', 'web2 10.77.0.13', 'lb2 10.77.0.14'])
    const site = (records: Array<{name: string; address: string}>) => records.filter((r) => !r.name.endsWith('.lab.foobar.test'))
    expect(site(dnsRecords({...spec, vip: '10.77.0.100'}, hosts))).toEqual([
      {name: 'www.foobar.test', address: '10.77.0.100'},
      {name: 'foobar.test', address: '10.77.0.100'},
    ])
    expect(site(dnsRecords(spec, hosts)).map((r) => r.address)).toEqual(['10.77.0.11', '10.77.0.11'])
  })
})
