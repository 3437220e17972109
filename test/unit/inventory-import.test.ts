/**
 * `foobar inventory import` (issue 21, item 2): an Ansible inventory (INI and YAML: groups, ranges, children, group
 * and host vars) or ~/.ssh/config becomes a foobar inventory that is valid and renders like the hand-written lab one.
 */
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {composeInventory} from '../../src/inventory/compose.js'
import {
  draftFromAnsible,
  draftFromSshConfig,
  parseAnsibleIni,
  parseAnsibleYaml,
  parseRoleMaps,
  rolesOf,
} from '../../src/inventory/import.js'
import {parseInventory} from '../../src/inventory/index.js'
import {fileOf, loadExample, renderAll} from './support/render.js'
import {ROOT, runCli} from './support/run-cli.js'

const FIX = join(ROOT, 'test/unit/fixtures/import')
const read = (f: string) => readFileSync(join(FIX, f), 'utf8')
const LAB_HOSTS = [
  {name: 'lb1', address: '10.77.0.11', roles: ['lb']},
  {name: 'web1', address: '10.77.0.12', roles: ['web', 'db']},
  {name: 'web2', address: '10.77.0.13', roles: ['web', 'db']},
]

describe('group names to roles', () => {
  test('known names, maps first (patterns, several roles), nothing guessed', () => {
    expect(rolesOf('webservers', [])).toEqual(['web'])
    expect(rolesOf('LoadBalancers', [])).toEqual(['lb'])
    expect(rolesOf('dbservers', [])).toEqual(['db'])
    expect(rolesOf('legacy', [])).toEqual([])
    expect(rolesOf('legacy-eu', parseRoleMaps(['legacy*=web+db']))).toEqual(['web', 'db'])
  })
  test('a bad --map: exit-2 error naming the form and the roles', () => {
    expect(() => parseRoleMaps(['web'])).toThrow(/expected PATTERN=ROLE\[\+ROLE\] with roles among lb, web, db, monitoring/)
    expect(() => parseRoleMaps(['web=webserver'])).toThrow(/--map web=webserver/)
  })
})

describe.each([
  ['hosts.ini', (t: string) => parseAnsibleIni(t, 'hosts.ini')],
  ['hosts.yml', (t: string) => parseAnsibleYaml(t, 'hosts.yml')],
])('an Ansible inventory: %s', (file, parse) => {
  test('hosts with their addresses, users and roles from every group they are in (children too); the rest said', () => {
    const draft = draftFromAnsible(parse(read(file)), [])
    expect(draft.hosts.map(({name, address, roles}) => ({name, address, roles}))).toEqual(LAB_HOSTS)
    expect(draft.hosts.every((h) => h.user === 'deploy')).toBe(true)
    expect(draft.notes.join('\n')).toMatch(/old1: left out .*legacy/)
    expect(draft.notes.join('\n')).toMatch(/group legacy: no role/)
    const mapped = draftFromAnsible(parse(read(file)), parseRoleMaps(['legacy=web']))
    expect(mapped.hosts.find((h) => h.name === 'old1')).toMatchObject({address: '10.77.0.99', roles: ['web']})
  })

  test('the inventory written from it is valid and renders like inventories/lab.yml', () => {
    const draft = draftFromAnsible(parse(read(file)), [])
    const lab = loadExample('lab')
    const text = composeInventory({
      domain: lab.site.domain,
      aliases: lab.site.aliases,
      email: lab.site.email,
      adminCidrs: ['10.77.0.1/32'],
      ssh: {user: 'deploy', port: 22, identityFile: '/var/lib/foobar-lab/ssh/id_ed25519', knownHosts: '/var/lib/foobar-lab/known_hosts'},
      tls: 'self-signed',
      hosts: draft.hosts,
      origin: 'test',
    })
    const inv = parseInventory(text, `${file}.foobar.yml`)
    expect(inv.mysql).toMatchObject({primary: 'web1', replicas: ['web2']})
    const [ours, theirs] = [renderAll(inv), renderAll(lab)]
    for (const [host, path] of [
      ['lb1', '/etc/haproxy/haproxy.cfg'],
      ['web1', '/etc/mysql/mariadb.conf.d/60-foobar.cnf'],
      ['web2', '/etc/foobar/firewall/ufw.rules'],
    ] as const) {
      // The lab opens its exporters to the control machine too: compare the rules the two have in common.
      const strip = (s: string) => s.split('\n').filter((l) => !/exporter|9100|9104|9113|8405/.test(l))
      expect(strip(fileOf(ours, host, path)), `${host} ${path}`).toEqual(strip(fileOf(theirs, host, path)))
    }
  })
})

test('~/.ssh/config: Host entries without wildcards, HostName/User/Port, roles from --map over the names', () => {
  const draft = draftFromSshConfig(read('ssh_config'), parseRoleMaps(['lb*=lb', 'web[12]=web+db']))
  expect(draft.hosts).toEqual([
    {name: 'lb1', address: '10.77.0.11', roles: ['lb'], user: 'deploy'},
    {name: 'web1', address: '10.77.0.12', roles: ['web', 'db'], user: 'deploy', port: 2222},
    {name: 'web2', address: '10.77.0.13', roles: ['web', 'db'], user: 'deploy'},
  ])
  expect(draft.notes).toEqual([expect.stringMatching(/^web2-alias: left out — no role/)])
})

test('hostile values from the source stay values: quoted in the YAML, refused by the schema', () => {
  const draft = draftFromAnsible(
    parseAnsibleIni('[web]\n"web1\nhosts:" ansible_host=10.0.0.1\nweb2 ansible_host="1.2.3.4 #"\n', 'x.ini'),
    [],
  )
  const text = composeInventory({
    domain: 'www.example.org',
    aliases: [],
    email: 'ops@example.org',
    adminCidrs: ['192.0.2.0/24'],
    ssh: {user: 'deploy', port: 22, knownHosts: '~/.ssh/known_hosts'},
    tls: 'acme',
    hosts: draft.hosts,
    origin: 'test',
  })
  let problems = ''
  try {
    parseInventory(text, 'x.yml')
  } catch (error) {
    problems = ((error as {details?: string[]}).details ?? []).join('\n')
  }
  // Each hostile value is reported where it landed, as a value of its field: no YAML structure came from it.
  expect(problems).toMatch(/hosts\[0\]\.name/)
  expect(problems).toMatch(/hosts\[2\]\.address/)
  expect(text).not.toMatch(/^hosts:"/m)
})

describe('foobar inventory import', () => {
  const dir = mkdtempSync(join(tmpdir(), 'foobar-import-'))
  const common = ['--domain', 'www.example.org', '--email', 'ops@example.org', '--admin-cidr', '192.0.2.0/24', '--json']

  test('writes a valid inventory; inventory check accepts it; an existing file is not replaced without --force', async () => {
    const out = join(dir, 'prod.yml')
    const r = await runCli(['inventory', 'import', join(FIX, 'hosts.ini'), '--out', out, '--map', 'legacy=web', ...common])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const body = JSON.parse(r.stdout)
    expect(body.result.hosts.map((h: {name: string}) => h.name)).toEqual(['lb1', 'web1', 'web2', 'old1'])
    const check = await runCli(['inventory', 'check', '-i', out, '--no-files'])
    expect(check.code, check.stdout + check.stderr).toBe(0)
    const again = await runCli(['inventory', 'import', join(FIX, 'hosts.ini'), '--out', out, ...common])
    expect(again.code).toBe(2)
    expect(JSON.parse(again.stdout).error.message).toBe(`${out} exists: not replaced`)
    writeFileSync(out, 'kept\n')
    const forced = await runCli(['inventory', 'import', join(FIX, 'hosts.yml'), '--out', out, '--force', ...common])
    expect(forced.code, forced.stdout).toBe(0)
    expect(readFileSync(out, 'utf8')).toContain('written by `foobar inventory import` from an Ansible inventory')
  })

  test('a host whose address is neither an IP nor a name that resolves: exit 2 naming it, nothing written', async () => {
    const ini = join(dir, 'bad.ini')
    writeFileSync(ini, '[web]\nweb1 ansible_host=no-such-host.invalid\n')
    const out = join(dir, 'bad.yml')
    const r = await runCli(['inventory', 'import', ini, '--out', out, ...common])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout).error.message).toBe('web1: its address no-such-host.invalid is not an IP address and does not resolve')
    expect(() => readFileSync(out)).toThrow()
  })
})
