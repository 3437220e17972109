/**
 * Monitoring (issue 9): what each host gets, Prometheus's targets from the inventory (checked by promtool), the
 * rsyslog configs (checked by rsyslogd -N1), the secrets' handling, and the parsing and arithmetic of `monitor`.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK, desiredState} from '../../src/components/index.js'
import {MONITORING_PATHS as P, prometheusConfig} from '../../src/components/monitoring/index.js'
import {ALERTING_PATHS, alertRules} from '../../src/components/alerting/index.js'
import {certRequests, scrapeTargets} from '../../src/engine/desired.js'
import {prepareTlsMaterial} from '../../src/components/tls/index.js'
import {
  buildVersion,
  haproxyStat,
  parseStubStatus,
  parseTargets,
  parseVersions,
  parseWindow,
  qpsReport,
  rate,
} from '../../src/components/monitoring/stats.js'
import {prepareMaterial} from '../../src/components/index.js'
import {type Inventory, parseInventory} from '../../src/inventory/index.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-monitoring-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0

/** The classic stack plus a monitoring host; the exporter's password from a file. */
function stack(extra = ''): Inventory {
  writeFileSync(join(TMP, 'monitor_password'), 'Ab3-kd9_x2.Lq8zz\n')
  // Read for a real run's files (the database fence's account derives its password from it).
  process.env.REPL = 'repl-secret-for-monitoring-tests'
  const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
tls: {source: {type: self-signed, state_dir: ${join(TMP, 'state')}}}
mysql: {primary: web1, replicas: [web2], replication_password: {env: REPL}, monitor_password: {file: ${join(TMP, 'monitor_password')}}}
monitoring: {sources: [198.51.100.10/32]${extra}}
hosts:
  - {name: lb1, address: 10.0.0.11, roles: [lb]}
  - {name: web1, address: 10.0.0.12, roles: [web, db]}
  - {name: web2, address: "2001:db8::13", roles: [web, db]}
  - {name: mon1, address: 10.0.0.14, roles: [monitoring]}
`
  return parseInventory(text, join(TMP, 'stack.yml'))
}

const host = (inv: Inventory, name: string) => inv.hosts.find((h) => h.name === name)!
const fileIn = (inv: Inventory, name: string, path: string, real = false) => {
  const d = desiredState(inv, host(inv, name), real ? {material: prepareMaterial(inv)} : {})
  return d.files.find((f) => f.path === path)
}

describe('clients on every host', () => {
  const inv = stack()

  test('each exporter listens on the host private address only, with the port of its role', () => {
    expect(fileIn(inv, 'lb1', P.nodeDefaults)!.content).toMatch(
      /^ARGS="--web.listen-address=10\.0\.0\.11:9100 --collector.systemd --collector.textfile.directory=\/var\/lib\/prometheus\/node-exporter"$/m,
    )
    expect(fileIn(inv, 'web1', P.nginxDefaults)!.content).toMatch(
      /^ARGS="-web.listen-address=10\.0\.0\.12:9113 -nginx.scrape-uri=http:\/\/127\.0\.0\.1:8081\/stub_status"$/m,
    )
    expect(fileIn(inv, 'web2', P.nodeDefaults)!.content).toContain('--web.listen-address=[2001:db8::13]:9100')
    expect(desiredState(inv, host(inv, 'lb1')).files.find((f) => f.path === '/etc/haproxy/haproxy.cfg')!.content).toMatch(
      /frontend metrics\n {4}bind 10\.0\.0\.11:8405\n/,
    )
    const packages = (name: string) => desiredState(inv, host(inv, name)).packages.filter((p) => p.startsWith('prometheus'))
    expect(packages('lb1')).toEqual(['prometheus-node-exporter'])
    expect(packages('web1')).toEqual(['prometheus-mysqld-exporter', 'prometheus-nginx-exporter', 'prometheus-node-exporter'])
    expect(packages('mon1')).toEqual(['prometheus', 'prometheus-alertmanager', 'prometheus-blackbox-exporter', 'prometheus-node-exporter'])
  })

  test('mysqld exporter: own least-privilege account, password from the secret only in secret root-only files', () => {
    const defaults = fileIn(inv, 'web1', P.mysqldDefaults, true)!
    const sql = fileIn(inv, 'web1', P.mysqldUserSql, true)!
    for (const f of [defaults, sql]) expect(f).toMatchObject({secret: true, mode: 0o600, owner: 'root'})
    expect(defaults.content).toContain('DATA_SOURCE_NAME="prometheus:Ab3-kd9_x2.Lq8zz@unix(/run/mysqld/mysqld.sock)/"')
    expect(sql.content).toContain('SET SESSION sql_log_bin = 0;')
    expect(sql.content).toContain("GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'prometheus'@'localhost';")
    expect(sql.content).toContain("GRANT SELECT ON performance_schema.* TO 'prometheus'@'localhost';")
    expect(sql.content).not.toMatch(/GRANT .*(ALL|SUPER|SELECT ON \*\.\*)/)
    // `foobar render` does not read secrets (and never writes secret files).
    expect(fileIn(inv, 'web1', P.mysqldDefaults)!.content).not.toContain('Ab3-kd9')
  })

  test('without monitor_password MariaDB maps the exporter by its OS user (unix_socket): no secret at all', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
mysql: {primary: db1}
hosts:
  - {name: db1, address: 10.0.0.21, roles: [db]}
`
    const inv2 = parseInventory(text, join(TMP, 'db.yml'))
    const d = desiredState(inv2, inv2.hosts[0]!)
    expect(d.files.find((f) => f.path === P.mysqldDefaults)).toMatchObject({secret: false})
    expect(d.files.find((f) => f.path === P.mysqldDefaults)!.content).toContain(
      'DATA_SOURCE_NAME="prometheus@unix(/run/mysqld/mysqld.sock)/"',
    )
    expect(d.files.find((f) => f.path === P.mysqldUserSql)!.content).toContain('IDENTIFIED VIA unix_socket')
    expect(() => desiredState({...inv2, mysql: {...inv2.mysql!, engine: 'mysql'}}, inv2.hosts[0]!)).toThrow(/monitor_password is needed/)
  })

  test('a password that could break out of its config is refused without being shown', () => {
    writeFileSync(join(TMP, 'bad_password'), 'short"; DROP USER x\n')
    const inv2 = stack()
    inv2.mysql!.monitorPassword = {file: join(TMP, 'bad_password')}
    expect(() => desiredState(inv2, host(inv2, 'web1'), {material: prepareMaterial(inv2)})).toThrow(/must be 12-128 characters.*not shown/)
    try {
      desiredState(inv2, host(inv2, 'web1'), {material: prepareMaterial(inv2)})
    } catch (error) {
      expect((error as Error).message).not.toContain('DROP')
    }
  })

  test('monitoring.enabled: false on a host: no exporter there, and Prometheus does not scrape it', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
hosts:
  - {name: lb1, address: 10.0.0.11, roles: [lb], monitoring: {enabled: false}}
  - {name: web1, address: 10.0.0.12, roles: [web]}
`
    const inv2 = parseInventory(text, join(TMP, 'off.yml'))
    expect(desiredState(inv2, inv2.hosts[0]!).packages).not.toContain('prometheus-node-exporter')
    expect(desiredState(inv2, inv2.hosts[0]!).files.find((f) => f.path === '/etc/haproxy/haproxy.cfg')!.content).not.toContain(
      'frontend metrics',
    )
    expect(scrapeTargets(STACK, inv2).map((t) => `${t.job} ${t.host}`)).toEqual(['node web1', 'nginx web1'])
  })
})

describe('the monitoring server', () => {
  const inv = stack()

  test('Prometheus scrapes every client of the inventory, labelled by host', async () => {
    // In component order (node exporter, nginx, HAProxy, mysqld), then inventory order.
    expect(scrapeTargets(STACK, inv).map((t) => `${t.job} ${t.target}`)).toEqual([
      'node 10.0.0.11:9100',
      'node 10.0.0.12:9100',
      'node [2001:db8::13]:9100',
      'node 10.0.0.14:9100',
      'nginx 10.0.0.12:9113',
      'nginx [2001:db8::13]:9113',
      'haproxy 10.0.0.11:8405',
      'mysqld 10.0.0.12:9104',
      'mysqld [2001:db8::13]:9104',
    ])
    await expect(prometheusConfig(inv, host(inv, 'mon1'), scrapeTargets(STACK, inv))).toMatchFileSnapshot(
      join('__snapshots__', 'monitoring', 'prometheus.yml'),
    )
  })

  test.skipIf(!has('promtool'))('promtool accepts the rendered prometheus.yml', () => {
    // The rule file it names (the alerting component writes it first on the host), here next to it.
    const rules = join(TMP, 'foobar-alerts.yml')
    writeFileSync(rules, alertRules(inv))
    const f = join(TMP, 'prometheus.yml')
    writeFileSync(f, prometheusConfig(inv, host(inv, 'mon1'), scrapeTargets(STACK, inv)).replace(ALERTING_PATHS.rules, rules))
    const r = spawnSync('promtool', ['check', 'config', f], {encoding: 'utf8'})
    expect(r.status, r.stdout + r.stderr).toBe(0)
  })

  test('the collector takes TLS on the private address from the inventory hosts only; clients forward to it', () => {
    const collector = fileIn(inv, 'mon1', P.collector)!.content
    expect(collector).toContain('PermittedPeer=["lb1", "web1", "web2"]')
    expect(collector).toContain('input(type="imtcp" address="10.0.0.14" port="6514" ruleset="foobarRemote")')
    const forward = fileIn(inv, 'web1', P.forward)!.content
    expect(forward).toContain('target="10.0.0.14" port="6514"')
    expect(forward).toContain('StreamDriverPermittedPeers="mon1"')
    expect(forward).toContain('File="/var/log/nginx/access.log"')
    expect(fileIn(inv, 'lb1', P.forward)!.content).not.toContain('imfile')
    expect(fileIn(inv, 'mon1', P.forward)).toBeUndefined()
    const d = desiredState(inv, host(inv, 'web1'), {material: prepareTlsMaterial(inv, certRequests(STACK, inv), {create: true})})
    expect(d.files.find((f) => f.path === P.logKey)).toMatchObject({secret: true, mode: 0o600})
    expect(d.files.find((f) => f.path === P.logCert)!.content).toMatch(/^-----BEGIN CERTIFICATE-----/)
  })

  test('no monitoring host: no log forwarding, the clients are still installed', () => {
    const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
hosts:
  - {name: web1, address: 10.0.0.12, roles: [web]}
`
    const inv2 = parseInventory(text, join(TMP, 'nomon.yml'))
    const d = desiredState(inv2, inv2.hosts[0]!)
    expect(d.packages).toContain('prometheus-nginx-exporter')
    expect(d.packages).not.toContain('rsyslog')
  })
})

describe.skipIf(!has('rsyslogd'))('rsyslogd -N1 accepts the rendered configs', () => {
  const inv = stack(', log_service: {url: {env: FOOBAR_TEST_LOG_URL}}')
  process.env.FOOBAR_TEST_LOG_URL = 'https://endpoint1.collection.example.com/receiver/v1/http/ZaVnC4dhaV2_x-Y=='
  const material = prepareMaterial(inv)
  const dir = mkdtempSync(join(TMP, 'rsyslog-'))

  /** Debian's main config in miniature, the drop-in, and the files it points at, under a temp dir. */
  function check(hostName: string, path: string): {status: number | null; out: string} {
    const d = desiredState(inv, host(inv, hostName), {material})
    const swap = (s: string) => s.replaceAll('/etc/', `${dir}/${hostName}/etc/`).replaceAll('/usr/local/', `${dir}/${hostName}/usr/local/`)
    for (const f of d.files) {
      const target = swap(f.path)
      execFileSync('mkdir', ['-p', join(target, '..')])
      writeFileSync(target, swap(f.content))
    }
    const main = join(dir, hostName, 'rsyslog.conf')
    writeFileSync(main, `global(workDirectory="${dir}")\nmodule(load="imuxsock")\ninclude(file="${swap(path)}")\n`)
    const r = spawnSync('rsyslogd', ['-N1', '-f', main], {encoding: 'utf8'})
    return {status: r.status, out: r.stdout + r.stderr}
  }

  test('collector', () => {
    const r = check('mon1', P.collector)
    expect(r.status, r.out).toBe(0)
  })

  test('forwarder (with imfile for nginx)', () => {
    const r = check('web1', P.forward)
    expect(r.status, r.out).toBe(0)
  })

  test('hosted log service: omprog to the batching script; the URL only in a root-only curl config', () => {
    const r = check('lb1', P.logService)
    expect(r.status, r.out).toBe(0)
    const d = desiredState(inv, host(inv, 'lb1'), {material})
    const curl = d.files.find((f) => f.path === P.logServiceCurl)!
    expect(curl).toMatchObject({secret: true, mode: 0o600})
    expect(curl.content).toContain(`url = "${process.env.FOOBAR_TEST_LOG_URL}"`)
    for (const f of d.files.filter((x) => !x.secret)) expect(f.content).not.toContain('ZaVnC4dhaV2')
    const ship = d.files.find((f) => f.path === P.logShip)!
    const syntax = spawnSync('bash', ['-n'], {input: ship.content, encoding: 'utf8'})
    expect(syntax.status, syntax.stderr).toBe(0)
  })
})

describe('hosted log service in the inventory', () => {
  test('only a secret reference; the URL itself is refused', () => {
    expect(() => stack(', log_service: {url: "https://x.example.com/t"}')).toThrow(
      expect.objectContaining({details: [expect.stringMatching(/:5:\d+: monitoring\.log_service\.url: must be a secret reference/)]}),
    )
    expect(host(stack(', log_service: {url: {env: LOGS}}'), 'lb1').monitoring.logService).toEqual({url: {env: 'LOGS'}})
  })

  test('a secret that is not an https URL is refused without being shown', () => {
    const inv = stack(', log_service: {url: {env: FOOBAR_TEST_BAD_URL}}')
    process.env.FOOBAR_TEST_BAD_URL = 'http://x.example.com/"; rm -rf /'
    expect(() => desiredState(inv, host(inv, 'lb1'), {material: prepareMaterial(inv)})).toThrow(
      /^monitoring.log_service.url: the secret must be an https:\/\/ URL[^"]*$/,
    )
  })
})

describe('parsing and QPS', () => {
  test('nginx stub_status: the requests counter', () => {
    expect(parseStubStatus('Active connections: 2 \nserver accepts handled requests\n 5 5 12 \nReading: 0 Writing: 1 Waiting: 1 \n')).toBe(
      12,
    )
    expect(() => parseStubStatus('<html>404</html>')).toThrow(/not an nginx stub_status/)
  })

  test("HAProxy's stats CSV: a column of one row", () => {
    const csv = [
      '# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,',
      'http,FRONTEND,,,0,1,262124,4,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,0,0,4,0,0,0,,0,1,4,',
      'https,FRONTEND,,,1,3,262124,300,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,3,0,,,,0,12,0,30,,,,0,1234,0,0,0,0,,12,30,1234,',
      'web,web1,0,0,0,1,,617,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,100,0,,1,4,1,,617,,2,0,,15,L7OK,200,1,0,617,0,0,0,0,,,,617,',
    ].join('\n')
    expect(haproxyStat(csv, 'https', 'FRONTEND', 'req_tot')).toBe(1234)
    expect(haproxyStat(csv, 'web', 'web1', 'req_tot')).toBe(617)
    expect(() => haproxyStat(csv, 'https', 'BACKEND', 'req_tot')).toThrow(/no https\/BACKEND row/)
  })

  test('rate: counter delta over the hosts own clock; a reset gives unknown, never a negative or huge rate', () => {
    expect(rate({host: 'a', at: 100, count: 1000}, {host: 'a', at: 110, count: 1200})).toBe(20)
    expect(rate({host: 'a', at: 100, count: 1000}, {host: 'a', at: 110, count: 5})).toBeNull()
    expect(rate({host: 'a', at: 100, count: 1}, {host: 'a', at: 100, count: 2})).toBeNull()
  })

  test('report: each LB and their sum (two behind a floating address), each web server and their sum, rounded to 0.01', () => {
    const r = qpsReport(
      10,
      [
        [
          {host: 'lb1', at: 0, count: 0},
          {host: 'lb1', at: 10.02, count: 200},
        ],
        [
          {host: 'lb2', at: 0, count: 50},
          {host: 'lb2', at: 10, count: 60},
        ],
      ],
      [
        [
          {host: 'web1', at: 0, count: 10},
          {host: 'web1', at: 10, count: 115},
        ],
        [
          {host: 'web2', at: 0.5, count: 0},
          {host: 'web2', at: 10.5, count: 100},
        ],
      ],
    )
    expect(r).toEqual({
      windowSeconds: 10,
      lb: [
        {host: 'lb1', qps: 19.96},
        {host: 'lb2', qps: 1},
      ],
      lbTotal: 20.96,
      web: [
        {host: 'web1', qps: 10.5},
        {host: 'web2', qps: 10},
      ],
      webTotal: 20.5,
    })
    expect(
      qpsReport(
        10,
        [],
        [
          [
            {host: 'w', at: 0, count: 9},
            {host: 'w', at: 10, count: 1},
          ],
        ],
      ).webTotal,
    ).toBeNull()
  })

  test('--window', () => {
    expect(parseWindow('10s')).toBe(10)
    expect(parseWindow('1500ms')).toBe(1.5)
    expect(parseWindow('2m')).toBe(120)
    expect(parseWindow('7')).toBe(7)
    for (const bad of ['0s', '10 s', '5h', 'soon', '-1']) expect(() => parseWindow(bad), bad).toThrow(/--window/)
  })

  test('versions and target health', () => {
    expect(buildVersion('# HELP x\nnode_exporter_build_info{branch="",goversion="go1.19.8",revision="",version="1.5.0"} 1\n')).toBe('1.5.0')
    expect(buildVersion('haproxy_process_build_info{version="2.6.12-1+deb12u1"} 1')).toBe('2.6.12-1+deb12u1')
    const targets = JSON.stringify({
      status: 'success',
      data: {
        activeTargets: [
          {
            labels: {job: 'node', host: 'web1', instance: '10.0.0.12:9100'},
            health: 'up',
            lastScrape: '2026-01-01T00:00:00Z',
            lastError: '',
          },
          {
            labels: {job: 'mysqld', host: 'web2', instance: '10.0.0.13:9104'},
            health: 'down',
            lastScrape: '2026-01-01T00:00:01Z',
            lastError: 'connection refused',
          },
        ],
      },
    })
    expect(parseTargets(targets)).toEqual([
      {job: 'node', host: 'web1', up: true, lastScrape: '2026-01-01T00:00:00Z'},
      {job: 'mysqld', host: 'web2', up: false, lastScrape: '2026-01-01T00:00:01Z', error: 'connection refused'},
    ])
    const versions = JSON.stringify({
      data: {result: [{metric: {__name__: 'node_exporter_build_info', job: 'node', host: 'web1', version: '1.5.0'}, value: [0, '1']}]},
    })
    expect(parseVersions(versions).get('node web1')).toBe('1.5.0')
  })
})
