/*
 * Trust at the edges of the inventory (issue 16): the firewall cannot be widened by accident, host addresses have
 * real semantics, and hostile or mistaken files are refused with file:line and without echoing their content.
 */
import {describe, expect, test} from 'vitest'
import {firewallRules, renderFirewall} from '../../src/components/firewall/index.js'
import {STACK} from '../../src/components/index.js'
import {hostPorts} from '../../src/engine/desired.js'
import {InventoryError, governedPorts, parseInventory, selectHosts, sshPort} from '../../src/inventory/index.js'
import type {Host, Inventory} from '../../src/inventory/index.js'
import {UserError} from '../../src/util/errors.js'

const FILE = '/srv/inv/edges.yml'

function problemsOf(text: string): InventoryError {
  try {
    parseInventory(text, FILE)
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryError)
    return error as InventoryError
  }
  throw new Error('expected the inventory to be rejected')
}

/** The one problem at `field`. */
function problemAt(text: string, field: string) {
  const err = problemsOf(text)
  const found = err.problems.filter((p) => p.field === field)
  expect(found, err.details.join('\n')).toHaveLength(1)
  return found[0]!
}

const host = (inv: Inventory, name: string): Host => inv.hosts.find((h) => h.name === name)!
const rulesOf = (inv: Inventory, name: string) => firewallRules(host(inv, name), hostPorts(STACK, inv, host(inv, name)))
const ufwOf = (inv: Inventory, name: string) => renderFirewall(host(inv, name), rulesOf(inv, name)).files[0]!.content

/** lb1 in front of web1 (primary) and web2 (replica), a monitoring host; `extra` is spliced into `firewall:`. */
const stack = (firewall = '', top = '') => `site: {domain: www.example.com, email: admin@example.com}
firewall:
  admin_cidrs: [192.0.2.0/24]
${firewall}monitoring:
  sources: [198.51.100.10/32]
mysql: {primary: web1, replicas: [web2], replication_password: {env: REPL}}
${top}hosts:
  - {name: lb1, address: 203.0.113.10, roles: [lb]}
  - {name: web1, address: 203.0.113.11, roles: [web, db]}
  - {name: web2, address: 203.0.113.12, roles: [web, db]}
  - {name: mon1, address: 203.0.113.30, roles: [monitoring]}
`

describe('the firewall cannot be widened by accident', () => {
  test('control: the stack loads, with no warnings', () => {
    expect(parseInventory(stack(), FILE).warnings).toBeUndefined()
  })

  test('an extra port on SSH is an error at the entry, naming the host and the override', () => {
    const p = problemAt(stack('  extra_ports:\n    lb: [{port: 22}]\n'), 'firewall.extra_ports.lb[0]')
    expect(p.location).toBe(`${FILE}:5:10`)
    expect(p.message).toContain('port 22/tcp is SSH (from firewall.admin_cidrs) on lb1')
    expect(p.message).toContain('override')
  })

  test('an extra port on the database, from anywhere, is an error for every db host, in one message', () => {
    const p = problemAt(stack('  extra_ports:\n    db: [{port: 3306, from: [0.0.0.0/0]}]\n'), 'firewall.extra_ports.db[0]')
    expect(p.message).toContain('port 3306/tcp is the database (from web and database hosts) on web1, web2')
  })

  test('exporters, Prometheus and the web servers are governed too; a role layer is located in roles.<role>', () => {
    const text = stack('', 'roles:\n  web:\n    firewall: {extra_ports: {web: [{port: 9113, from: [10.0.0.0/8]}]}}\n')
    const p = problemAt(text, 'roles.web.firewall.extra_ports.web[0]')
    expect(p.message).toContain('nginx exporter')
    expect(problemsOf(stack('  extra_ports:\n    monitoring: [{port: 9090}]\n')).details.join('\n')).toContain('Prometheus')
    expect(problemsOf(stack('  extra_ports:\n    web: [{port: 443, from: [10.0.0.0/8]}]\n')).details.join('\n')).toContain(
      'https on the web server',
    )
  })

  test('an override that opens SSH to any address also needs allow_any_source', () => {
    const p = problemAt(stack('  extra_ports:\n    lb: [{port: 22, override: "bastion behind nat"}]\n'), 'firewall.extra_ports.lb[0]')
    expect(p.message).toContain('opens SSH on lb1 to any address')
    expect(p.message).toContain('allow_any_source: {ssh:')
  })

  test('a deliberate override loads; the merged rule says it was widened, and a warning names it', () => {
    const inv = parseInventory(
      stack(
        '  allow_any_source: {ssh: "bastion pool has no fixed address"}\n  extra_ports:\n    lb: [{port: 22, override: "bastion behind nat"}]\n    db: [{port: 3306, from: [10.8.0.0/16], comment: vpn reports, override: "reporting over the vpn"}]\n',
      ),
      FILE,
    )
    const ssh = rulesOf(inv, 'lb1').find((r) => r.port === 22)!
    expect(ssh).toMatchObject({from: [], comment: 'ssh from admin networks, widened to anywhere by extra lb port'})
    expect(ufwOf(inv, 'lb1')).toContain(
      "allow in proto tcp to any port 22 comment 'ssh from admin networks, widened to anywhere by extra lb port'",
    )
    const db = rulesOf(inv, 'web1').find((r) => r.port === 3306)!
    expect(db.from).toContain('10.8.0.0/16')
    expect(db.comment).toBe('mysql from web and database hosts, widened by vpn reports')
    expect(ufwOf(inv, 'web1')).not.toMatch(/from 10\.8\.0\.0\/16 to any port 3306 comment 'mysql from web and database hosts'/)
    expect(inv.warnings).toEqual([
      'firewall: firewall.extra_ports.lb[0] widens port 22/tcp (SSH (from firewall.admin_cidrs)) on lb1 to any address: override "bastion behind nat"',
      'firewall: firewall.extra_ports.db[0] widens port 3306/tcp (the database (from web and database hosts)) on web1, web2: override "reporting over the vpn"',
    ])
  })

  test('unchanged: rules that do not widen keep their comment (the LB+web host: 80 from anywhere wins)', () => {
    const inv = parseInventory(stack().replace('roles: [lb]', 'roles: [lb, web]'), FILE)
    expect(rulesOf(inv, 'lb1').find((r) => r.port === 80)).toMatchObject({from: [], comment: 'http (redirect and ACME)'})
  })

  test('admin_cidrs with any address is an error; acknowledged, it loads with a warning', () => {
    const text = stack().replace('admin_cidrs: [192.0.2.0/24]', 'admin_cidrs: [192.0.2.0/24, 0.0.0.0/0]')
    const p = problemAt(text, 'firewall.admin_cidrs[1]')
    expect(p.message).toContain('0.0.0.0/0 opens SSH on lb1, web1, web2, mon1 to any address')
    const inv = parseInventory(text.replace('firewall:\n', 'firewall:\n  allow_any_source: {ssh: "break-glass access"}\n'), FILE)
    expect(inv.warnings).toEqual([
      'firewall: SSH on lb1, web1, web2, mon1 is open to any address (firewall.admin_cidrs: 0.0.0.0/0), acknowledged in firewall.allow_any_source: "break-glass access"',
    ])
  })

  test('monitoring.sources with ::/0 is an error unless the exporters are acknowledged', () => {
    const text = stack().replace('sources: [198.51.100.10/32]', 'sources: ["::/0"]')
    expect(problemAt(text, 'monitoring.sources[0]').message).toContain('opens the exporters on lb1, web1, web2, mon1 to any address')
    const inv = parseInventory(text.replace('firewall:\n', 'firewall:\n  allow_any_source: {exporters: "public status page"}\n'), FILE)
    expect(inv.warnings?.[0]).toContain('the exporters on lb1, web1, web2, mon1 is open to any address')
  })

  test('every port the stack opens on a host is a governed port (the loader and the components agree)', () => {
    const inv = parseInventory(
      stack('', '').replace(
        'mysql: {primary: web1,',
        'mysql: {endpoint: {port: 3307, check_port: 9201, metrics_port: 8407}, port: 3310, primary: web1,',
      ),
      FILE,
    )
    const both = parseInventory(stack().replace('roles: [lb]', 'roles: [lb, web]'), FILE)
    for (const i of [inv, both]) {
      for (const h of i.hosts) {
        const governed = governedPorts(i, h).map((g) => `${g.port}/${g.proto}`)
        const open = [`${sshPort(h)}/tcp`, ...hostPorts(STACK, i, h).map((p) => `${p.port}/${p.proto}`)]
        for (const port of open) expect(governed, `${h.name} ${port}`).toContain(port)
      }
    }
  })

  test('a rule list built by hand (not through the loader) is refused too', () => {
    const inv = parseInventory(stack(), FILE)
    const lb = host(inv, 'lb1')
    const widened = {...lb, firewall: {...lb.firewall, extraPorts: {lb: [{port: 22, proto: 'tcp' as const, from: []}]}}}
    expect(() => firewallRules(widened, [])).toThrow(/would widen foobar's own rule/)
  })
})

describe('host addresses have real semantics (ipaddr.js)', () => {
  const withAddress = (address: string) => stack().replace('address: 203.0.113.12', `address: "${address}"`)
  test.each([
    ['0.0.0.0', 'unspecified address'],
    ['::', 'unspecified address'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['fe80::1%eth0', 'zone id'],
    ['fe80::1', 'link-local'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['255.255.255.255', 'broadcast'],
  ])('%s is refused as a host address (%s)', (address, why) => {
    const p = problemAt(withAddress(address), 'hosts[2].address')
    expect(p.message).toContain(why)
    expect(p.message).toContain(JSON.stringify(address))
  })

  test('an IPv4-mapped IPv6 address is the IPv4 host: normalised, and a duplicate of it', () => {
    const inv = parseInventory(withAddress('::ffff:203.0.113.99'), FILE)
    expect(host(inv, 'web2')).toMatchObject({address: '203.0.113.99', family: 4})
    const p = problemAt(withAddress('::ffff:203.0.113.10'), 'hosts[2].address')
    expect(p.message).toContain('duplicate address "::ffff:203.0.113.10" (also hosts[0]: both are 203.0.113.10)')
  })

  test('networks: a zone id is refused, an IPv4-mapped network is the IPv4 network', () => {
    expect(problemAt(stack().replace('[192.0.2.0/24]', '["fe80::1%eth0"]'), 'firewall.admin_cidrs[0]').message).toContain('no zone id')
    const inv = parseInventory(stack().replace('[192.0.2.0/24]', '["::ffff:192.0.2.0/120"]'), FILE)
    expect(host(inv, 'lb1').firewall.adminCidrs).toEqual(['192.0.2.0/24'])
  })
})

describe('contract gaps', () => {
  test('--limit "" (or only commas) selected nothing: an exit-2 error', () => {
    const inv = parseInventory(stack(), FILE)
    for (const limit of [[''], ['', ''], [' ']]) {
      let err: unknown
      try {
        selectHosts(inv, limit)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(UserError)
      expect((err as UserError).exitCode).toBe(2)
      expect((err as UserError).message).toContain('selected nothing')
    }
  })

  test('a host named like a role is an error', () => {
    const p = problemAt(stack().replace('name: mon1', 'name: web'), 'hosts[3].name')
    expect(p.message).toContain('"web" is a role name')
  })

  test('a billion-laughs document is refused with file:line, not a ReferenceError', () => {
    const levels = ['a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]']
    for (const [prev, name] of [...'abcdefgh'].map((c, i) => [c, 'bcdefghi'[i]!]))
      levels.push(`${name}: &${name} [${`*${prev}, `.repeat(8)}*${prev}]`)
    const err = problemsOf(`${levels.join('\n')}\n`)
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]).toMatchObject({field: 'YAML', location: `${FILE}:2:8`})
    expect(err.problems[0]!.message).toContain('resource-exhaustion')
  })

  test('an unknown tag is an error at its line', () => {
    const err = problemsOf(stack().replace('site: {', 'site: !foo {'))
    expect(err.problems[0]).toMatchObject({field: 'YAML', location: `${FILE}:1:7`})
    expect(err.problems[0]!.message).toContain('!foo')
    expect(problemsOf(stack().replace('lb1', '!!js/function lb1')).problems[0]!.field).toBe('YAML')
  })

  test('a look-alike in a name is named by position and code point, and shown escaped', () => {
    const p = problemAt(stack().replace('name: web2', 'name: w\u0435b2'), 'hosts[2].name')
    expect(p.message).toContain('character 2 is U+0435 CYRILLIC SMALL LETTER IE')
    expect(p.message).toContain('"w\\u0435b2"')
    expect(p.message).not.toContain('w\u0435b2')
    const role = problemAt(stack().replace('roles: [lb]', 'roles: [\u04cfb]'), 'hosts[0].roles[0]')
    expect(role.message).toMatch(/character 1 is U\+04CF/)
  })
})

describe('unknown fields show the key (shortened), never the value', () => {
  const HASH = '$6$Zq0salt$AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstuvwxyzABCDEF./'
  const SHADOW = `root:${HASH}:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nops:$y$j9T$secretsalt$hashhashhash:19700:0:99999:7:::\n`

  test('a shadow file passed as the inventory: no hash, no salt, in any field or message', () => {
    const err = problemsOf(SHADOW)
    const all = [err.message, ...err.details].join('\n')
    expect(all).not.toContain('Zq0salt')
    expect(all).not.toContain('secretsalt')
    expect(all).not.toContain('$6$')
    expect(all).not.toContain(':19700')
    expect(err.problems.find((p) => p.location === `${FILE}:1:1` && p.field === 'root...')?.message).toMatch(
      /^unknown field "root\.\.\." \(\d+ characters, shown up to the first that no field name has\)/,
    )
  })

  test('a plausible key is shown whole; a file that is not a mapping is not echoed', () => {
    expect(problemAt(stack().replace('site: {', 'sites: 1\nsite: {'), 'sites').message).toContain('unknown field "sites"')
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n-----END PRIVATE KEY-----\n'
    const err = problemsOf(pem)
    expect(err.details.join('\n')).not.toContain('MIIEvQ')
    expect(err.details.join('\n')).toContain('must be a YAML mapping')
  })
})
