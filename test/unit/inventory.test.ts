import {homedir} from 'node:os'
import {join, resolve} from 'node:path'
import {describe, expect, test} from 'vitest'
import {UserError} from '../../src/util/errors.js'
import {InventoryError, loadInventory, parseInventory, selectHosts, sshPort, sshUser} from '../../src/inventory/index.js'
import type {Inventory} from '../../src/inventory/index.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const FILE = '/srv/inv/test.yml'

/** Runs parseInventory and returns the InventoryError it must throw. */
function problemsOf(text: string): InventoryError {
  try {
    parseInventory(text, FILE)
  } catch (error) {
    expect(error).toBeInstanceOf(InventoryError)
    return error as InventoryError
  }
  throw new Error('expected the inventory to be rejected')
}

const host = (inv: Inventory, name: string) => {
  const h = inv.hosts.find((x) => x.name === name)
  if (!h) throw new Error(`no host ${name}`)
  return h
}

const MINIMAL = `site:
  domain: www.example.com
  email: admin@example.com
firewall:
  admin_cidrs: [192.0.2.0/24]
hosts:
  - name: web1
    address: 192.0.2.11
    roles: [web]
`

describe('example inventories', () => {
  test('inventories/foobar.yml: lb1 in front of web1 (primary) and web2 (replica), watched by mon1', async () => {
    const inv = await loadInventory(join(ROOT, 'inventories/foobar.yml'))
    expect(inv.site).toEqual({domain: 'www.foobar.com', aliases: ['foobar.com'], email: 'admin@foobar.com'})
    expect(inv.hosts.map((h) => [h.name, h.address, h.roles])).toEqual([
      ['lb1', '203.0.113.10', ['lb']],
      ['web1', '203.0.113.11', ['db', 'web']],
      ['web2', '203.0.113.12', ['db', 'web']],
      ['mon1', '203.0.113.13', ['monitoring']],
    ])
    expect(host(inv, 'lb1').db).toBeUndefined()
    expect(host(inv, 'web1').db).toEqual({role: 'primary', serverId: 2})
    expect(host(inv, 'web2').db).toEqual({role: 'replica', serverId: 3})
    expect(inv.mysql).toMatchObject({engine: 'mariadb', primary: 'web1', replicas: ['web2'], replicationUser: 'repl', port: 3306})
    expect(inv.mysql?.replicationPassword).toEqual({env: 'FOOBAR_REPL_PASSWORD'})
    for (const h of inv.hosts) {
      expect(h.ssh).toMatchObject({user: 'deploy', port: 22, sudo: true, identityFile: join(homedir(), '.ssh/id_ed25519')})
      expect(h.firewall).toMatchObject({backend: 'ufw', adminCidrs: ['198.51.100.0/24'], ipv6: true})
      expect(h.tls.source).toMatchObject({
        type: 'acme',
        directory: 'https://acme-v02.api.letsencrypt.org/directory',
        email: 'admin@foobar.com',
        challenge: 'http-01',
      })
      expect(h.lb).toEqual({balance: 'roundrobin', healthCheck: '/healthz', reencrypt: true, backendPort: 443})
      expect(h.monitoring).toEqual({enabled: true, sources: ['198.51.100.10/32']})
      expect(h.apt.proxy).toBeUndefined()
    }
  })

  test('inventories/lab.yml: the same stack on 10.77.0.0/24 with the apt proxy and a self-signed certificate', async () => {
    const inv = await loadInventory(join(ROOT, 'inventories/lab.yml'))
    expect(inv.hosts.map((h) => [h.name, h.address, h.roles.join(',')])).toEqual([
      ['lb1', '10.77.0.11', 'lb'],
      ['web1', '10.77.0.12', 'db,web'],
      ['web2', '10.77.0.13', 'db,web'],
    ])
    expect(inv.site.domain).toBe('www.foobar.test')
    expect(inv.mysql?.replicationPassword).toEqual({file: '/var/lib/foobar-lab/secrets/repl_password'})
    for (const h of inv.hosts) {
      expect(h.apt.proxy).toBe('http://10.77.0.1:3142')
      expect(h.tls.source.type).toBe('self-signed')
      expect(h.firewall.adminCidrs).toEqual(['10.77.0.1/32'])
      expect(h.ssh.knownHosts).toBe('/var/lib/foobar-lab/known_hosts')
    }
  })

  test('a missing file is a clear exit-2 error, not a stack trace', async () => {
    const err = await loadInventory('/nonexistent/foobar.yml').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UserError)
    expect((err as UserError).exitCode).toBe(2)
    expect((err as UserError).message).toMatch(/\/nonexistent\/foobar\.yml: cannot read the inventory \(ENOENT\)/)
  })
})

describe('layering: host > roles.<role> > top level > defaults', () => {
  const LAYERED = `site:
  domain: www.example.com
  email: admin@example.com
ssh:
  user: deploy
  port: 2222
  identity_file: keys/id_ed25519
firewall:
  admin_cidrs: [192.0.2.0/24, 2001:db8::/32]
tls:
  hsts: {max_age: 600}
  source: {type: acme, directory: https://acme.example.com/dir, email: certs@example.com}
lb:
  health_check: /up
roles:
  web:
    ssh: {port: 2200}
    tls:
      hsts: {preload: true}
    lb: {backend_port: 8443}
  db:
    firewall: {admin_cidrs: [198.51.100.7]}
hosts:
  - name: lb1
    address: 192.0.2.10
    roles: [lb]
  - name: web1
    address: 192.0.2.11
    roles: [web]
    ssh: {port: 2201, sudo: false}
  - name: web2
    address: 2001:db8::12
    roles: [web]
  - name: db1
    address: 192.0.2.13
    roles: [db]
    firewall: {backend: iptables}
mysql:
  primary: db1
`
  const inv = parseInventory(LAYERED, FILE)

  test('defaults fill what no layer sets', () => {
    const lb1 = host(inv, 'lb1')
    expect(lb1.firewall.backend).toBe('ufw')
    expect(lb1.firewall.ipv6).toBe(true)
    expect(lb1.ssh.sudo).toBe(true)
    expect(lb1.lb.balance).toBe('roundrobin')
    expect(lb1.lb.reencrypt).toBe(true)
    expect(lb1.lb.backendPort).toBe(443)
    expect(lb1.tls.profile).toBe('intermediate')
    expect(lb1.tls.hsts).toEqual({enabled: true, maxAge: 600, includeSubdomains: false, preload: false})
    expect(lb1.monitoring).toEqual({enabled: true, sources: []})
  })

  test('ssh.user and ssh.port stay unset unless a layer writes them (root and 22 included): ssh_config may fill them in', () => {
    const none = parseInventory(MINIMAL, FILE).hosts[0]!
    expect(none.ssh.user).toBeUndefined()
    expect(none.ssh.port).toBeUndefined()
    // What the host's own configs are rendered for (firewall, fail2ban, sshd): foobar's defaults.
    expect([sshUser(none), sshPort(none)]).toEqual(['root', 22])
    const explicit = parseInventory(MINIMAL.replace('hosts:\n', 'ssh: {user: root, port: 22}\nhosts:\n'), FILE).hosts[0]!
    expect([explicit.ssh.user, explicit.ssh.port]).toEqual(['root', 22])
    // host > role > top level, as for every setting.
    const layered = parseInventory(
      MINIMAL.replace('hosts:\n', 'ssh: {user: deploy, port: 2222}\nroles:\n  web: {ssh: {port: 22}}\nhosts:\n').replace(
        'roles: [web]\n',
        'roles: [web]\n    ssh: {user: root}\n',
      ),
      FILE,
    ).hosts[0]!
    expect([layered.ssh.user, layered.ssh.port]).toEqual(['root', 22])
  })

  test('the top level overrides defaults', () => {
    const lb1 = host(inv, 'lb1')
    expect(lb1.ssh.user).toBe('deploy')
    expect(lb1.ssh.port).toBe(2222)
    expect(lb1.lb.healthCheck).toBe('/up')
    expect(lb1.tls.source).toMatchObject({type: 'acme', directory: 'https://acme.example.com/dir', email: 'certs@example.com'})
  })

  test('roles.<role> overrides the top level, key by key', () => {
    const web2 = host(inv, 'web2')
    expect(web2.ssh).toMatchObject({user: 'deploy', port: 2200, sudo: true})
    expect(web2.lb).toMatchObject({healthCheck: '/up', backendPort: 8443})
    // hsts merged field by field: max_age from the top, preload from the role, the rest from defaults
    expect(web2.tls.hsts).toEqual({enabled: true, maxAge: 600, includeSubdomains: false, preload: true})
    // lists are replaced whole, not concatenated
    expect(host(inv, 'db1').firewall.adminCidrs).toEqual(['198.51.100.7/32'])
    expect(web2.firewall.adminCidrs).toEqual(['192.0.2.0/24', '2001:db8::/32'])
  })

  test('host values override the role', () => {
    const web1 = host(inv, 'web1')
    expect(web1.ssh).toMatchObject({user: 'deploy', port: 2201, sudo: false})
    expect(web1.lb.backendPort).toBe(8443)
    expect(host(inv, 'db1').firewall.backend).toBe('iptables')
    expect(host(inv, 'web2').firewall.backend).toBe('ufw')
  })

  test('the certificate source is replaced whole: no acme fields leak into a self-signed host', () => {
    const text = MINIMAL.replace(
      'hosts:\n',
      'tls:\n  source: {type: acme, directory: https://acme.example.com/dir, email: certs@example.com, state_dir: acme-state}\nroles:\n  web:\n    tls: {source: {type: self-signed}}\nhosts:\n',
    )
    const self = parseInventory(text, FILE)
    expect(self.hosts[0]!.tls.source).toEqual({type: 'self-signed', stateDir: undefined})
    expect(self.tlsSource).toEqual({type: 'self-signed', stateDir: undefined})
  })

  test('a layer never leaks into another host', () => {
    expect(host(inv, 'lb1').ssh.port).toBe(2222)
    expect(host(inv, 'db1').ssh.port).toBe(2222)
    expect(host(inv, 'lb1').tls.hsts.preload).toBe(false)
    expect(host(inv, 'db1').tls.source.type).toBe('acme')
    // parsing again gives the same result (no shared mutable defaults)
    expect(parseInventory(LAYERED, FILE)).toEqual(inv)
  })

  test('paths are resolved next to the inventory, bare addresses become /32 or /128, v6 hosts are family 6', () => {
    expect(host(inv, 'lb1').ssh.identityFile).toBe('/srv/inv/keys/id_ed25519')
    expect(host(inv, 'web2').family).toBe(6)
    expect(host(inv, 'web1').family).toBe(4)
    const v6admin = parseInventory(MINIMAL.replace('[192.0.2.0/24]', '[192.0.2.9, 2001:db8::9]'), FILE)
    expect(v6admin.hosts[0]!.firewall.adminCidrs).toEqual(['192.0.2.9/32', '2001:db8::9/128'])
  })
})

describe('the certificate source is one for the whole inventory', () => {
  const AGREE = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
tls:
  source: {type: acme, directory: https://acme.example.com/dir, state_dir: state}
roles:
  web:
    tls: {source: {type: acme, directory: https://acme.example.com/dir, email: admin@example.com, state_dir: ./state}}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb]}
  - {name: web1, address: 192.0.2.11, roles: [web]}
`

  test('inv.tlsSource is the source every host resolves to (same after defaults and paths, however it is written)', () => {
    const inv = parseInventory(AGREE, FILE)
    const expected = {
      type: 'acme',
      directory: 'https://acme.example.com/dir',
      email: 'admin@example.com',
      challenge: 'http-01',
      keyType: 'ecdsa',
      stateDir: '/srv/inv/state',
    }
    expect(inv.tlsSource).toMatchObject(expected)
    for (const h of inv.hosts) expect(h.tls.source).toEqual(inv.tlsSource)
  })

  test('the example inventories have one source', async () => {
    expect((await loadInventory(join(ROOT, 'inventories/foobar.yml'))).tlsSource).toMatchObject({type: 'acme', email: 'admin@foobar.com'})
    expect((await loadInventory(join(ROOT, 'inventories/lab.yml'))).tlsSource.type).toBe('self-signed')
  })

  test('a host whose source differs is an error at that host, naming both hosts and where each source comes from', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
tls:
  source: {type: acme, directory: https://acme.example.com/dir}
hosts:
  - name: lb1
    address: 192.0.2.10
    roles: [lb]
  - name: web1
    address: 192.0.2.11
    roles: [web]
    tls:
      source: {type: self-signed}
  - name: web2
    address: 192.0.2.12
    roles: [web]
`
    const err = problemsOf(text)
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]).toMatchObject({location: `${FILE}:13:15`, field: 'hosts[1].tls.source'})
    const message = err.problems[0]!.message
    expect(message).toContain("web1's certificate source is self-signed (set on the host)")
    expect(message).toContain("lb1's is acme (from the top level)")
    expect(message).toContain('set it once, at the top level')
  })

  test('a source from a role layer: the host is located, and the fields that differ are named', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
tls:
  source: {type: acme, directory: https://acme.example.com/dir}
roles:
  lb:
    tls: {source: {type: acme, directory: https://acme.example.com/dir, key_type: rsa, state_dir: lb-state}}
hosts:
  - {name: web1, address: 192.0.2.11, roles: [web]}
  - {name: web2, address: 192.0.2.12, roles: [web]}
  - {name: lb1, address: 192.0.2.10, roles: [lb]}
`
    const err = problemsOf(text)
    // The value most hosts have is the reference: the odd one out is reported, at its entry in hosts.
    expect(err.problems).toEqual([
      {
        location: `${FILE}:11:5`,
        field: 'hosts[2].tls.source',
        message: expect.stringContaining(
          "lb1's certificate source (from roles.lb) differs from web1's (from the top level) in key_type, state_dir",
        ),
      },
    ])
  })

  test('listed together with the other cross-field problems', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
hosts:
  - {name: web1, address: 192.0.2.11, roles: [web]}
  - {name: web1, address: 192.0.2.12, roles: [web], tls: {source: {type: files, cert: site.pem, key: site.key}}}
`
    const err = problemsOf(text)
    expect(err.problems.map((p) => p.field)).toEqual(['hosts[1].name', 'hosts[1].tls.source'])
    expect(err.problems[1]!.message).toContain('is files (set on the host)')
    expect(err.problems[1]!.message).toContain('is self-signed (the default)')
  })
})

describe('--limit (selectHosts)', () => {
  const inv = parseInventory(
    `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
mysql: {primary: db1}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb]}
  - {name: web1, address: 192.0.2.11, roles: [web]}
  - {name: web2, address: 192.0.2.12, roles: [web]}
  - {name: db1, address: 192.0.2.13, roles: [db]}
`,
    FILE,
  )
  const names = (limit: string[] | undefined) => selectHosts(inv, limit).map((h) => h.name)

  test('no limit selects every host in inventory order', () => {
    expect(names(undefined)).toEqual(['lb1', 'web1', 'web2', 'db1'])
    expect(names([])).toEqual(['lb1', 'web1', 'web2', 'db1'])
  })

  test('host names and role names, mixed, keep inventory order', () => {
    expect(names(['web2'])).toEqual(['web2'])
    expect(names(['web'])).toEqual(['web1', 'web2'])
    expect(names(['db1', 'lb'])).toEqual(['lb1', 'db1'])
    expect(names([' web1 ', 'web'])).toEqual(['web1', 'web2'])
  })

  test('a role no host has selects nothing; an unknown name is an exit-2 error that lists what exists', () => {
    expect(names(['monitoring'])).toEqual([])
    let err: unknown
    try {
      selectHosts(inv, ['web1', 'wbe2'])
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(UserError)
    expect((err as UserError).exitCode).toBe(2)
    expect((err as UserError).message).toContain('"wbe2"')
    expect((err as UserError).message).not.toContain('"web1"')
    expect((err as UserError).details.join('\n')).toContain('lb1, web1, web2, db1')
  })

  test("patterns over host names and exclusions, as Ansible users type them: 'web*', 'web[12]', '!web2', 'web,!web1'", () => {
    expect(names(['web*'])).toEqual(['web1', 'web2'])
    expect(names(['*1'])).toEqual(['lb1', 'web1', 'db1'])
    expect(names(['web[2]', 'db?'])).toEqual(['web2', 'db1'])
    // Exclusion alone: every host but those.
    expect(names(['!web2'])).toEqual(['lb1', 'web1', 'db1'])
    expect(names(['!web', '!lb'])).toEqual(['db1'])
    // A role (or a pattern) less some of its hosts.
    expect(names(['web', '!web1'])).toEqual(['web2'])
    expect(names(['*', '!web*'])).toEqual(['lb1', 'db1'])
  })

  test('a pattern that matches no host, a lone "!", or exclusions that leave nothing: exit-2 errors', () => {
    const error = (limit: string[]) => {
      try {
        selectHosts(inv, limit)
      } catch (e) {
        return e as UserError
      }
      throw new Error(`--limit ${limit.join(',')} was accepted`)
    }
    expect(error(['cache*']).message).toBe('--limit: no host or role matching "cache*"')
    expect(error(['!wbe2']).message).toBe('--limit: no host or role named "wbe2"')
    expect(error(['!']).message).toBe('--limit: "!" must be followed by a host, role or pattern to leave out')
    expect(error(['web', '!web*']).message).toBe('--limit web,!web*: selected no host')
    for (const limit of [['cache*'], ['!'], ['web', '!web*']]) expect(error(limit).exitCode).toBe(2)
  })
})

describe('errors: every problem at once, with file:line:col, field path and bad value', () => {
  test('many problems in one file are all listed, in one error', () => {
    const text = `site:
  domain: "www.foobar.com; include /etc/passwd"
  email: not-an-email
ssh:
  port: 70000
firewall:
  admin_cidrs: [10.0.0.0/33]
hosts:
  - name: lb1
    address: 10.0.0.300
    roles: [lb, cache]
  - name: web1
    address: 10.0.0.11
    roles: [web]
    adress: 10.0.0.12
  - name: web1
    address: 10.0.0.11
    roles: [web]
`
    const err = problemsOf(text)
    expect(err.exitCode).toBe(2)
    const lines = err.problems.map((p) => `${p.location}: ${p.field}: ${p.message}`)
    const expectLine = (location: string, field: string, ...fragments: string[]) => {
      const line = lines.find((l) => l.startsWith(`${FILE}:${location}: ${field}: `))
      expect(line, `no problem reported at ${location} for ${field}; got:\n${lines.join('\n')}`).toBeDefined()
      for (const f of fragments) expect(line).toContain(f)
    }
    expectLine('2:11', 'site.domain', 'DNS name', '"www.foobar.com; include /etc/passwd"')
    expectLine('3:10', 'site.email', 'email', '"not-an-email"')
    expectLine('5:9', 'ssh.port', '1 to 65535', '70000')
    expectLine('7:17', 'firewall.admin_cidrs[0]', 'CIDR', '"10.0.0.0/33"')
    expectLine('10:14', 'hosts[0].address', 'IPv4 or IPv6', '"10.0.0.300"')
    expectLine('11:17', 'hosts[0].roles[1]', '"lb"', '"cache"')
    expectLine('15:5', 'hosts[1].adress', 'unknown field')
    expectLine('16:11', 'hosts[2].name', 'duplicate host name "web1"', 'hosts[1]')
    expectLine('17:14', 'hosts[2].address', 'duplicate address "10.0.0.11"', 'hosts[1]')
    expect(err.problems).toHaveLength(9)
    // The summary line says how many, and the CLI prints every detail.
    expect(err.message).toBe(`${FILE}: 9 problems in the inventory; nothing was changed`)
    expect(err.details).toEqual(lines)
  })

  test('a missing required field names the field', () => {
    const err = problemsOf(MINIMAL.replace('  email: admin@example.com\n', ''))
    expect(err.problems).toEqual([{location: `${FILE}:2:3`, field: 'site.email', message: 'is required'}])
  })

  test('YAML syntax errors and duplicate keys point at the line', () => {
    const syntax = problemsOf(MINIMAL.replace('roles: [web]', 'roles: [web'))
    expect(syntax.problems[0]!.field).toBe('YAML')
    expect(syntax.problems[0]!.location).toMatch(new RegExp(`^${FILE}:(8|9|10):\\d+$`))
    const dup = problemsOf(MINIMAL.replace('    roles: [web]\n', '    roles: [web]\n    roles: [db]\n'))
    expect(dup.problems[0]).toMatchObject({location: `${FILE}:10:5`, field: 'YAML'})
    expect(dup.problems[0]!.message).toMatch(/unique/i)
  })

  test('database topology problems are listed together with schema problems', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
mysql:
  primary: [db1, db2]
  replica_user: x
hosts:
  - {name: db1, address: 192.0.2.11, roles: [db]}
  - {name: db2, address: 192.0.2.12, roles: [db]}
`
    const err = problemsOf(text)
    const fields = err.problems.map((p) => `${p.location} ${p.field}`)
    expect(fields).toContain(`${FILE}:4:12 mysql.primary`)
    expect(fields).toContain(`${FILE}:5:3 mysql.replica_user`)
    expect(err.problems.find((p) => p.field === 'mysql.primary')!.message).toMatch(/two primaries \(db1, db2\)/)
  })

  test('a host without any admin network is reported with the other problems and points into the file', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
hosts:
  - {name: web1, address: 192.0.2.11, roles: [web]}
  - {name: web2, address: 192.0.2.300, roles: [web]}
`
    const err = problemsOf(text)
    const fields = err.problems.map((p) => p.field)
    expect(fields).toContain('hosts[1].address')
    const admin = err.problems.filter((p) => p.message.includes('admin network'))
    expect(admin.map((p) => p.location)).toEqual([`${FILE}:3:5`, `${FILE}:4:5`])
    expect(admin[0]!.field).toBe('hosts[0].firewall.admin_cidrs')
  })

  test('an admin network from a role layer is enough', () => {
    const text = MINIMAL.replace(
      'firewall:\n  admin_cidrs: [192.0.2.0/24]\n',
      'roles:\n  web:\n    firewall: {admin_cidrs: [192.0.2.0/24]}\n',
    )
    expect(parseInventory(text, FILE).hosts[0]!.firewall.adminCidrs).toEqual(['192.0.2.0/24'])
  })

  test('IPv6 duplicates are found whatever the spelling', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
hosts:
  - {name: web1, address: "2001:db8::1", roles: [web]}
  - {name: web2, address: "2001:DB8:0:0:0:0:0:1", roles: [web]}
`
    const err = problemsOf(text)
    expect(err.problems).toHaveLength(1)
    expect(err.problems[0]).toMatchObject({field: 'hosts[1].address', location: `${FILE}:5:27`})
    expect(err.problems[0]!.message).toContain('duplicate address')
  })

  test('values are shown JSON-quoted so a newline is visible, not printed', () => {
    const err = problemsOf(MINIMAL.replace('domain: www.example.com', 'domain: "www.example.com\\nserver_name evil"'))
    expect(err.problems[0]!.field).toBe('site.domain')
    expect(err.problems[0]!.message).toContain('"www.example.com\\nserver_name evil"')
    expect(err.details.join('\n')).not.toContain('\nserver_name evil')
  })
})
