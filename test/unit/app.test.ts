/**
 * The inventory's own app (issue 21, item 3): the app section's validation (hostile values included), its health
 * path as the load balancer's check, nginx's site for each kind of app, and the default app taken away.
 */
import {describe, expect, test} from 'vitest'
import {DEFAULT_APP_PATHS, defaultAppFactsScript, planDefaultAppGone} from '../../src/components/app/index.js'
import {APP_DB_PATHS} from '../../src/components/app/database.js'
import {STACK, desiredState} from '../../src/components/index.js'
import {BACKEND_HEALTH_PATH, NGINX_SITE} from '../../src/components/nginx/index.js'
import {PORTS} from '../../src/components/ports.js'
import {HAPROXY_CFG} from '../../src/components/haproxy/index.js'
import {preparePlanners} from '../../src/engine/desired.js'
import {type Inventory, InventoryError, parseInventory} from '../../src/inventory/index.js'
import {NGINX_OWN_PORTS} from '../../src/inventory/loader.js'
import {fileOf, loadExample, renderAll} from './support/render.js'

const FILE = '/srv/inv.yml'
const BASE = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
hosts:
  - {name: lb1, address: 192.0.2.10, roles: [lb]}
  - {name: web1, address: 192.0.2.11, roles: [web]}
  - {name: web2, address: 192.0.2.12, roles: [web]}
`
const withApp = (app: string, extra = '') => `${BASE}${extra}app: ${app}\n`

function problems(text: string): Array<{field: string; message: string; location: string}> {
  try {
    parseInventory(text, FILE)
  } catch (error) {
    if (error instanceof InventoryError) return error.problems
    throw error
  }
  return []
}

/** The lab inventory with an app section instead of its lb.health_check. */
const labWith = (app: string): Inventory =>
  loadExample('lab', (t) => t.replace('  health_check: /healthz\n', '').replace('\nhosts:\n', `\n${app}\n\nhosts:\n`))

describe('the app section: accepted', () => {
  test.each([
    ['{upstream: "127.0.0.1:8080"}', {upstream: '127.0.0.1:8080'}],
    ['{upstream: "[::1]:8080"}', {upstream: '[::1]:8080'}],
    ['{upstream: "app.internal:8080"}', {upstream: 'app.internal:8080'}],
    ['{upstream: "app:65535"}', {upstream: 'app:65535'}],
    ['{upstream: "unix:/run/myapp/app.sock"}', {upstream: 'unix:/run/myapp/app.sock'}],
    ['{root: /srv/www/site}', {root: '/srv/www/site'}],
    ['{root: /srv/www/site/}', {root: '/srv/www/site'}],
    ['{root: /usr/share/nginx/html}', {root: '/usr/share/nginx/html'}],
  ])('app: %s', (app, want) => {
    const inv = parseInventory(withApp(app), FILE)
    expect(inv.app).toEqual(want)
  })

  test('no app section: the default app, /healthz', () => {
    const inv = parseInventory(BASE, FILE)
    expect(inv.app).toBeUndefined()
    expect(inv.hosts.map((h) => h.lb.healthCheck)).toEqual(['/healthz', '/healthz', '/healthz'])
  })

  test("app.health is every host's health check; without it, / (or lb.health_check where written)", () => {
    expect(parseInventory(withApp('{upstream: "127.0.0.1:9000", health: /status/ready}'), FILE).hosts.map((h) => h.lb.healthCheck)).toEqual(
      ['/status/ready', '/status/ready', '/status/ready'],
    )
    expect(parseInventory(withApp('{root: /srv/www}'), FILE).hosts[1]!.lb.healthCheck).toBe('/')
    expect(parseInventory(withApp('{root: /srv/www}', 'lb: {health_check: /up.txt}\n'), FILE).hosts[1]!.lb.healthCheck).toBe('/up.txt')
    // The same path written twice is not a conflict.
    expect(problems(withApp('{root: /srv/www, health: /up.txt}', 'lb: {health_check: /up.txt}\n'))).toEqual([])
  })
})

describe('the app section: refused, at the field, with the value', () => {
  const HOSTILE_UPSTREAMS = [
    '127.0.0.1:8080; include /etc/passwd',
    '127.0.0.1:8080 backup',
    '127.0.0.1:8080\n    server evil:80',
    'x } server { listen 8080',
    '"127.0.0.1:8080"x',
    "'a':80",
    '$host:80',
    'app#x:80',
    'app:80`id`',
    'app:$(id)',
    'unix:/run/a.sock;',
    'unix:/run/a b.sock',
    'unix:/run/../etc/x.sock',
    'unix:run/a.sock',
    'unix:/run/a.sock\u0000',
    `unix:/${'a'.repeat(120)}.sock`,
    'http://127.0.0.1:8080',
    '127.0.0.1',
    '127.0.0.1:0',
    '127.0.0.1:65536',
    '127.0.0.1:08080',
    '0.0.0.0:8080',
    '[::]:8080',
    '[fe80::1%eth0]:80',
    '::1:8080',
    '300.1.1.1:80',
    'App.Internal:80',
  ]
  test.each(HOSTILE_UPSTREAMS)('upstream %j', (value) => {
    const ps = problems(withApp(`{upstream: ${JSON.stringify(value)}}`))
    const p = ps.find((x) => x.field === 'app.upstream')
    expect(p, JSON.stringify(ps)).toBeDefined()
    expect(p!.message).toContain(JSON.stringify(value).slice(0, 40))
    expect(p!.location).toMatch(/^\/srv\/inv\.yml:\d+:\d+$/)
  })

  const HOSTILE_ROOTS = [
    '/srv/www; include /etc/passwd',
    '/srv/www\n    autoindex on',
    '/srv/{www}',
    '/srv/"www"',
    '/srv/$document_root',
    '/srv/#www',
    '/srv/w w',
    '/srv/../etc',
    '/srv/./www',
    '/srv//www',
    'srv/www',
    '/',
    '/etc',
    '/etc/nginx',
    '/root/site',
    '/proc/self',
    '/run/secrets',
    '/var/lib/foobar/backup',
    '/var/log',
    '/tmp/site',
  ]
  test.each(HOSTILE_ROOTS)('root %j', (value) => {
    const ps = problems(withApp(`{root: ${JSON.stringify(value)}}`))
    const p = ps.find((x) => x.field === 'app.root')
    expect(p, JSON.stringify(ps)).toBeDefined()
    expect(p!.message).toContain(JSON.stringify(value).slice(0, 40))
  })

  test.each(['/health; return 200', '/health\n', 'health', '/he alth', '/h?x=1', '/$uri', '/.foobar-health', '/.foobar-lb-serving'])(
    'health %j',
    (value) => {
      const ps = problems(withApp(`{upstream: "127.0.0.1:9000", health: ${JSON.stringify(value)}}`))
      expect(
        ps.find((x) => x.field === 'app.health'),
        JSON.stringify(ps),
      ).toBeDefined()
    },
  )

  test('exactly one of upstream or root', () => {
    expect(problems(withApp('{upstream: "127.0.0.1:9000", root: /srv/www}'))).toEqual([
      expect.objectContaining({field: 'app', message: expect.stringMatching(/exactly one of upstream .* or root .*, not both/)}),
    ])
    expect(problems(withApp('{health: /x}'))).toEqual([
      expect.objectContaining({field: 'app', message: expect.stringMatching(/^must name exactly one of upstream/)}),
    ])
    expect(problems(withApp('{upstream: "127.0.0.1:9000", port: 9000}'))).toEqual([
      expect.objectContaining({field: 'app.port', message: expect.stringMatching(/unknown field "port"/)}),
    ])
  })

  test('lb.health_check written apart from app.health: an error at each, naming both', () => {
    const text = `${BASE.replace(
      '  - {name: web2, address: 192.0.2.12, roles: [web]}\n',
      '  - {name: web2, address: 192.0.2.12, roles: [web], lb: {health_check: /other}}\n',
    )}lb: {health_check: /healthz}\nroles:\n  web: {lb: {health_check: /health}}\napp: {upstream: "127.0.0.1:9000", health: /health}\n`
    const ps = problems(text)
    expect(ps.map((p) => p.field).sort()).toEqual(['hosts[2].lb.health_check', 'lb.health_check'])
    const top = ps.find((p) => p.field === 'lb.health_check')!
    expect(top.message).toBe(
      '"/healthz" differs from app.health "/health": the load balancer checks the app\'s own health path; write it once, as app.health (remove lb.health_check)',
    )
    expect(top.location).toBe(`${FILE}:7:20`)
  })

  test("mysql.app is the default app's account: refused with app", () => {
    const text = `${BASE.replace('roles: [web]}\n  - {name: web2', 'roles: [web, db]}\n  - {name: web2')}mysql: {primary: web1, app: {password: {env: APP_PW}}}\napp: {upstream: "127.0.0.1:9000"}\n`
    const ps = problems(text)
    expect(ps).toEqual([
      expect.objectContaining({field: 'mysql.app', message: expect.stringMatching(/^is the default app's database account/)}),
    ])
  })

  test("an upstream on the loopback at nginx's own port, and an app without web servers", () => {
    for (const port of [80, 443, 8081]) {
      const ps = problems(withApp(`{upstream: "127.0.0.1:${port}"}`))
      expect(ps, String(port)).toEqual([
        expect.objectContaining({field: 'app.upstream', message: expect.stringContaining(`port ${port} on the loopback is nginx's own`)}),
      ])
    }
    expect(problems(withApp('{upstream: "127.0.0.1:8080"}'))).toEqual([])
    expect(problems(withApp('{upstream: "10.0.0.5:443"}'))).toEqual([])
    const noWeb = `site: {domain: www.example.com, email: admin@example.com}\nfirewall: {admin_cidrs: [192.0.2.0/24]}\nhosts:\n  - {name: db1, address: 192.0.2.11, roles: [monitoring]}\napp: {root: /srv/www}\n`
    expect(problems(noWeb)).toEqual([expect.objectContaining({field: 'app', message: expect.stringMatching(/no host has the web role/)})])
  })

  test("the loader's copy of nginx's own ports agrees with the components'", () => {
    expect(NGINX_OWN_PORTS).toEqual({http: PORTS.http, nginxStatus: PORTS.nginxStatus})
  })
})

describe("nginx's site for each kind of app (snapshots)", () => {
  const variants = {
    'upstream-host-port': 'app: {upstream: "127.0.0.1:8082", health: /health}',
    'upstream-ipv6': 'app: {upstream: "[::1]:9000", health: /health}',
    'upstream-unix-socket': 'app: {upstream: "unix:/run/myapp/app.sock", health: /status/ready}',
    root: 'app: {root: /srv/www/site}',
  }
  for (const [label, app] of Object.entries(variants)) {
    test(label, async () => {
      const site = fileOf(renderAll(labWith(app)), 'web1', NGINX_SITE)
      await expect(site).toMatchFileSnapshot(`__snapshots__/app/${label}.conf`)
    })
  }

  test('upstream: proxied; the LB check mapped to the app health path; no root', () => {
    const site = fileOf(renderAll(labWith('app: {upstream: "unix:/run/myapp/app.sock", health: /status/ready}')), 'web1', NGINX_SITE)
    expect(site).toMatch(/upstream foobar_app \{\s+server unix:\/run\/myapp\/app\.sock;/)
    expect(site).toMatch(/location = \/\.foobar-health \{\s+rewrite \^ \/status\/ready last;\s+\}/)
    expect(site).toContain('proxy_pass http://foobar_app;')
    expect(site).not.toMatch(/^ {4}root /m) // (the ACME location has a root of its own)
  })

  test('root: served by nginx (files, then directories, else 404; no dot files); no upstream', () => {
    const site = fileOf(renderAll(labWith('app: {root: /srv/www/site}')), 'web1', NGINX_SITE)
    expect(site).toMatch(/^ {4}root \/srv\/www\/site;$/m)
    expect(site).toContain('try_files $uri $uri/ =404;')
    expect(site).toMatch(/location ~ \/\\\.\(\?!well-known\/\) \{\s+return 404;/)
    expect(site).not.toContain('upstream foobar_app')
    expect(site).not.toContain('proxy_pass')
    expect(site).toMatch(/rewrite \^ \/ last;/)
  })
})

describe('the default app only when none is named', () => {
  test('with app: no default app files or service on a web server; its files are to be absent; the rest as before', () => {
    const inv = labWith('app: {upstream: "127.0.0.1:8082", health: /health}')
    const web1 = desiredState(
      inv,
      inv.hosts.find((h) => h.name === 'web1')!,
    )
    expect(web1.files.map((f) => f.path)).not.toEqual(expect.arrayContaining([DEFAULT_APP_PATHS.script]))
    expect(web1.files.some((f) => f.path.startsWith('/opt/foobar-app') || f.path.includes('foobar-app.service'))).toBe(false)
    expect(web1.services.map((s) => s.name)).not.toContain('foobar-app')
    expect(web1.absent).toEqual(expect.arrayContaining([DEFAULT_APP_PATHS.script, DEFAULT_APP_PATHS.unit, APP_DB_PATHS.password]))
    expect(web1.packages).not.toContain('python3-pymysql')
    // nginx's gate asks the app's own path, and names it when it fails.
    const nginx = web1.services.find((s) => s.name === 'nginx')!
    expect(nginx.health).toContain(' https://www.foobar.test:443/health ')
    expect(nginx.health).toContain("GET /health (the app'\\''s health path) through nginx")
    // The default app is there without the section.
    const lab = loadExample('lab')
    const def = desiredState(
      lab,
      lab.hosts.find((h) => h.name === 'web1')!,
    )
    expect(def.files.map((f) => f.path)).toEqual(expect.arrayContaining([DEFAULT_APP_PATHS.script, DEFAULT_APP_PATHS.unit]))
    expect(def.services.map((s) => s.name)).toContain('foobar-app')
    expect(def.absent).not.toContain(DEFAULT_APP_PATHS.script)
  })

  test("HAProxy's config does not change with the app or its health path: its check asks nginx's fixed path", () => {
    const lab = loadExample('lab')
    const own = labWith('app: {upstream: "127.0.0.1:8082", health: /health}')
    const cfg = (inv: Inventory) => fileOf(renderAll(inv), 'lb1', HAPROXY_CFG)
    expect(cfg(own)).toBe(cfg(lab))
    expect(cfg(own)).toContain(`http-check send meth GET uri ${BACKEND_HEALTH_PATH} ver HTTP/1.1`)
  })

  test('the live step stops the default app only while it runs, is enabled or has its link; only with app named', () => {
    expect(planDefaultAppGone(['none inactive nolink'])).toEqual([])
    expect(planDefaultAppGone(['disabled inactive nolink'])).toEqual([])
    expect(planDefaultAppGone([])).toEqual([])
    for (const line of ['enabled active link', 'none active nolink', 'disabled inactive link', 'enabled inactive nolink']) {
      const [a] = planDefaultAppGone([line])
      expect(a, line).toMatchObject({kind: 'stop-default-app', data: {unit: 'foobar-app.service'}})
      expect(a!.summary).toMatch(/^stop and disable the default app \(foobar-app\.service\)/)
    }
    expect(defaultAppFactsScript()).toContain(`[ -L ${DEFAULT_APP_PATHS.wants} ]`)
    const lab = loadExample('lab')
    const own = labWith('app: {root: /srv/www}')
    // Only the app's planner: the others read the lab's secrets, which exist only while a lab is up.
    expect(preparePlanners(STACK, lab, lab.hosts, ['app']).has('app')).toBe(false)
    expect(preparePlanners(STACK, own, own.hosts, ['app']).has('app')).toBe(true)
  })
})
