/**
 * Alerting (issue 19): the rule file (promtool check rules, and promtool test rules for every rule: one that fires
 * and one that does not), Alertmanager's config (amtool check-config: receivers, inhibition, the test route), the
 * blackbox exporter's (its own --config.check), the inventory's alerting settings and what they refuse, the parsing
 * behind `monitor alerts` / `test-alert` and verify.
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {parse as parseYaml} from 'yaml'
import {ALERTING_PATHS, alertRules, alertmanagerConfig, blackboxConfig, probes, ruleNames} from '../../src/components/alerting/index.js'
import {notificationCounts, parseAlertmanagers, parseAmAlerts, parseRules, parseVector} from '../../src/components/alerting/api.js'
import {integrations} from '../../src/components/alerting/live.js'
import {STACK, desiredState} from '../../src/components/index.js'
import {hostPorts} from '../../src/engine/desired.js'
import {type Inventory, InventoryError, parseInventory} from '../../src/inventory/index.js'
import {ago} from '../../src/commands/monitor/alerts.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-alerting-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))
const CI = process.env.CI === 'true'
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0
/** A checker that is missing skips, except under CI (which installs them: scripts/setup.sh). */
const needs = (bin: string) => !has(bin) && !CI

function stack(alerting = '', tls = '', mysql = '{primary: web1, replicas: [web2], replication_password: {env: REPL}}'): Inventory {
  const text = `site: {domain: www.example.com, email: admin@example.com}
firewall: {admin_cidrs: [192.0.2.0/24]}
tls: {${tls}source: {type: self-signed, state_dir: ${join(TMP, 'state')}}}
mysql: ${mysql}
${alerting}
hosts:
  - {name: lb1, address: 10.0.0.11, roles: [lb]}
  - {name: web1, address: 10.0.0.12, roles: [web, db]}
  - {name: web2, address: "2001:db8::13", roles: [web, db]}
  - {name: mon1, address: 10.0.0.14, roles: [monitoring]}
`
  return parseInventory(text, join(TMP, 'stack.yml'))
}

const RECEIVERS = `alerting:
  receivers:
    webhook: {url: "https://hooks.example.com/foobar/alerts"}
    email: {to: [ops@example.com, oncall@example.com], from: alerts@example.com, smarthost: "smtp.example.com:587", username: alerts@example.com, password: {env: SMTP_PW}}`

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, {encoding: 'utf8', timeout: 60_000})

describe('alert rules', () => {
  const rules = alertRules(stack())

  test('one rule per condition of the issue (fail2ban: no metric exists in Debian 12, so no rule), and a broken automatic upgrade (issue 22)', () => {
    expect(ruleNames(rules)).toEqual([
      'HostDown',
      'ExporterDown',
      'DatabaseDown',
      'BackendDown',
      'HttpErrorRatio',
      'TrafficStopped',
      'ReplicationStopped',
      'ReplicationLag',
      'MultipleWriters',
      'ProbeFailed',
      'CertificateExpiring',
      'DiskFull',
      'InodesFull',
      'MemoryFull',
      'SystemdUnitFailed',
      'UpgradeBroken',
    ])
    // Every alert says which host it is about (inhibition by host, `monitor alerts`).
    expect(rules.match(/summary: '/g)).toHaveLength(16)
  })

  test.skipIf(needs('promtool'))('promtool check rules accepts them', () => {
    const f = join(TMP, 'rules.yml')
    writeFileSync(f, rules)
    const r = run('promtool', ['check', 'rules', f])
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toContain('SUCCESS: 16 rules found')
  })

  test.skipIf(needs('promtool'))('promtool test rules: every rule fires where it should and stays quiet where it should not', () => {
    const fixture = readFileSync(join(import.meta.dirname, 'fixtures', 'alerting', 'rules.test.yml'), 'utf8')
    // Every rule has its test: the fixture names each alert it tests, with at least one firing and one quiet case.
    const tested = parseYaml(fixture) as {tests: Array<{alert_rule_test: Array<{alertname: string; exp_alerts: unknown[]}>}>}
    const cases = tested.tests.flatMap((t) => t.alert_rule_test)
    for (const name of ruleNames(rules)) {
      expect(
        cases.some((c) => c.alertname === name && c.exp_alerts.length > 0),
        `${name} fires in a test`,
      ).toBe(true)
      expect(
        cases.some((c) => c.alertname === name && c.exp_alerts.length === 0),
        `${name} stays quiet in a test`,
      ).toBe(true)
    }
    writeFileSync(join(TMP, 'foobar-alerts.yml'), rules)
    const t = join(TMP, 'rules.test.yml')
    writeFileSync(t, `rule_files: [foobar-alerts.yml]\n${fixture}`)
    const r = run('promtool', ['test', 'rules', t])
    expect(r.status, r.stdout + r.stderr).toBe(0)
    // ... and the same tests fail on a threshold that differs from the one they were written for.
    writeFileSync(join(TMP, 'foobar-alerts.yml'), alertRules(stack('alerting: {rules: {disk: {percent: 96}, writers: {for: 5m}}}')))
    const bad = run('promtool', ['test', 'rules', t])
    expect(bad.status).not.toBe(0)
    expect(bad.stdout + bad.stderr).toMatch(/alertname: DiskFull/)
    expect(bad.stdout + bad.stderr).toMatch(/alertname: MultipleWriters/)
  })

  test.skipIf(needs('promtool'))(
    "galera: every member takes writes, so MultipleWriters and the replication rules give way to the cluster's own; promtool tests them",
    () => {
      const galera = alertRules(stack('', '', '{topology: galera, primary: web1, replicas: [web2], arbitrator: lb1}'))
      const names = ruleNames(galera)
      expect(names).toEqual(expect.arrayContaining(['GaleraMemberNotReady', 'GaleraClusterShrunk']))
      expect(names).not.toEqual(expect.arrayContaining(['MultipleWriters']))
      expect(names.filter((n) => n.startsWith('Replication'))).toEqual([])
      writeFileSync(join(TMP, 'foobar-alerts.yml'), galera)
      const fixture = readFileSync(join(import.meta.dirname, 'fixtures', 'alerting', 'rules.galera.test.yml'), 'utf8')
      const t = join(TMP, 'rules.galera.test.yml')
      writeFileSync(t, `rule_files: [foobar-alerts.yml]\n${fixture}`)
      const r = run('promtool', ['test', 'rules', t])
      expect(r.status, r.stdout + r.stderr).toBe(0)
    },
  )

  test('thresholds and durations come from the inventory', () => {
    const custom = alertRules(
      stack(
        'alerting: {rules: {http_5xx: {ratio: 0.2, window: 2m}, replication: {max_lag: 60}, cert_expiry: {days: 30}, backend_down: {for: 10s}}}',
      ),
    )
    expect(custom).toContain('> 0.2\n')
    expect(custom).toContain('[2m]))')
    expect(custom).toContain('mysql_slave_status_seconds_behind_master) > 60')
    expect(custom).toContain('/ 86400 < 30')
    expect(custom).toMatch(/alert: BackendDown\n(?:.*\n){3}\s+for: 10s/)
  })
})

describe('Alertmanager and the blackbox exporter on the monitoring host', () => {
  process.env.REPL = 'repl-secret-for-alerting-tests'
  process.env.SMTP_PW = 's3cret-smtp_pw!'
  const inv = stack(RECEIVERS)
  const mon = inv.hosts.find((h) => h.name === 'mon1')!

  test('the monitoring host gets Alertmanager and the blackbox exporter; Alertmanager only for the admin networks', () => {
    const d = desiredState(inv, mon, {})
    expect(d.packages).toEqual(expect.arrayContaining(['prometheus-alertmanager', 'prometheus-blackbox-exporter']))
    const defaults = d.files.find((f) => f.path === ALERTING_PATHS.alertmanagerDefaults)!.content
    expect(defaults).toContain('--web.listen-address=10.0.0.14:9093')
    expect(defaults).toMatch(/--cluster\.listen-address="$/m)
    expect(d.files.find((f) => f.path === ALERTING_PATHS.blackboxDefaults)!.content).toContain('--web.listen-address=127.0.0.1:9115')
    expect(hostPorts(STACK, inv, mon).filter((p) => p.port === 9093)).toEqual([
      {port: 9093, proto: 'tcp', from: ['192.0.2.0/24'], comment: 'alertmanager from admin networks'},
    ])
    // Nothing for the other hosts: their firewall is as before (web servers' HTTPS for the load balancers only).
    for (const h of inv.hosts.filter((x) => x !== mon)) expect(hostPorts(STACK, inv, h).some((p) => p.port === 9093)).toBe(false)
  })

  test('the SMTP password is a file of its own, secret, never in the config', () => {
    const d = desiredState(inv, mon, {material: undefined})
    const pw = d.files.find((f) => f.path === ALERTING_PATHS.smtpPassword)!
    expect(pw).toMatchObject({secret: true, mode: 0o640, owner: 'root', group: 'prometheus'})
    const cfg = alertmanagerConfig(inv)
    expect(cfg).not.toContain('s3cret')
    expect(cfg).toContain(`auth_password_file: ${ALERTING_PATHS.smtpPassword}`)
    expect(cfg).toContain('require_tls: true')
  })

  test('receivers, grouping, inhibition and the test route', () => {
    const cfg = parseYaml(alertmanagerConfig(inv)) as {
      route: {group_by: string[]; group_wait: string; repeat_interval: string; routes: Array<{matchers: string[]; group_wait: string}>}
      inhibit_rules: Array<{source_matchers: string[]; target_matchers: string[]; equal: string[]}>
      receivers: Array<{
        webhook_configs: Array<{url: string; send_resolved: boolean}>
        email_configs: Array<{to: string; smarthost: string}>
      }>
    }
    expect(cfg.route).toMatchObject({group_by: ['alertname', 'host'], group_wait: '30s', repeat_interval: '4h'})
    expect(cfg.route.routes[0]).toMatchObject({matchers: ['alertname="FoobarTestAlert"'], group_wait: '0s'})
    expect(cfg.inhibit_rules).toEqual([
      {source_matchers: ['alertname="HostDown"'], target_matchers: ['alertname!="HostDown"'], equal: ['host']},
    ])
    expect(cfg.receivers[0]!.webhook_configs).toEqual([{url: 'https://hooks.example.com/foobar/alerts', send_resolved: true}])
    expect(cfg.receivers[0]!.email_configs[0]).toMatchObject({to: 'ops@example.com, oncall@example.com', smarthost: 'smtp.example.com:587'})
    expect(integrations(inv)).toEqual(['webhook', 'email'])
    expect(integrations(stack())).toEqual([])
  })

  test.skipIf(needs('amtool'))('amtool check-config accepts it, with and without receivers', () => {
    for (const [name, i] of [
      ['full', inv],
      ['none', stack()],
    ] as const) {
      const f = join(TMP, `alertmanager-${name}.yml`)
      writeFileSync(f, alertmanagerConfig(i))
      const r = run('amtool', ['check-config', f])
      expect(r.status, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toContain('1 inhibit rules')
    }
  })

  test.skipIf(needs('prometheus-blackbox-exporter'))(
    'the blackbox exporter accepts its config; the site probe wants the name, the chain and HSTS',
    () => {
      const text = blackboxConfig(inv)
      const f = join(TMP, 'blackbox.yml')
      writeFileSync(f, text)
      const r = run('prometheus-blackbox-exporter', ['--config.check', `--config.file=${f}`])
      expect(r.status, r.stdout + r.stderr).toBe(0)
      const site = (parseYaml(text) as {modules: Record<string, {http: Record<string, unknown>}>}).modules.foobar_site!.http
      expect(site).toMatchObject({
        fail_if_not_ssl: true,
        follow_redirects: false,
        headers: {Host: 'www.example.com'},
        tls_config: {server_name: 'www.example.com', ca_file: ALERTING_PATHS.probeCa},
        fail_if_header_not_matches: [{header: 'Strict-Transport-Security', regexp: '^max-age=[0-9]+'}],
      })
      expect(blackboxConfig(stack('', 'hsts: {enabled: false}, '))).not.toContain('Strict-Transport-Security')
    },
  )

  test('probes: the site and the app health through each load balancer', () => {
    expect(probes(inv).map((p) => `${p.probe} ${p.host} ${p.url}`)).toEqual([
      'site lb1 https://10.0.0.11:443/',
      'health lb1 https://10.0.0.11:443/healthz',
    ])
  })

  test('alerting off, or no monitoring host: nothing of it anywhere', () => {
    const off = stack('alerting: {enabled: false}')
    const d = desiredState(
      off,
      off.hosts.find((h) => h.name === 'mon1')!,
      {},
    )
    expect(d.packages).not.toContain('prometheus-alertmanager')
    expect(d.files.find((f) => f.path === '/etc/prometheus/prometheus.yml')!.content).not.toContain('rule_files')
  })
})

describe('inventory: what alerting refuses', () => {
  const bad = (alerting: string) => {
    try {
      stack(alerting)
    } catch (error) {
      if (error instanceof InventoryError) return error.message + (error as InventoryError & {details?: string[]}).details?.join('\n')
      throw error
    }
    return 'accepted'
  }

  test.each([
    ['a webhook URL with a quote', `alerting: {receivers: {webhook: {url: "https://x.example.com/a'b"}}}`],
    ['a webhook URL with a query string', 'alerting: {receivers: {webhook: {url: "https://x.example.com/a?token=1"}}}'],
    ['a webhook URL with a newline', 'alerting: {receivers: {webhook: {url: "https://x.example.com/a\\nb: c"}}}'],
    ['a non-http webhook', 'alerting: {receivers: {webhook: {url: "file:///etc/passwd"}}}'],
    [
      'an e-mail with a header in it',
      'alerting: {receivers: {email: {to: ["a@example.com\\nBcc: x@evil.test"], from: b@example.com, smarthost: "smtp.example.com:587"}}}',
    ],
    [
      'a smarthost without a port',
      'alerting: {receivers: {email: {to: [a@example.com], from: b@example.com, smarthost: smtp.example.com}}}',
    ],
    [
      'a smarthost with YAML in it',
      `alerting: {receivers: {email: {to: [a@example.com], from: b@example.com, smarthost: "smtp.example.com:587' x"}}}`,
    ],
    [
      'a password written in clear',
      'alerting: {receivers: {email: {to: [a@example.com], from: b@example.com, smarthost: "s.example.com:25", username: u, password: hunter2}}}',
    ],
    [
      'a username without a password',
      'alerting: {receivers: {email: {to: [a@example.com], from: b@example.com, smarthost: "s.example.com:25", username: u}}}',
    ],
    ['a duration with two units', 'alerting: {rules: {host_down: {for: 1m30s}}}'],
    ['a duration with PromQL in it', 'alerting: {rules: {http_5xx: {window: "5m]) or vector(1"}}}'],
    ['a percentage of 100', 'alerting: {rules: {disk: {percent: 100}}}'],
    ['an unknown rule', 'alerting: {rules: {fail2ban: {for: 1m}}}'],
  ])('refuses %s', (_what, alerting) => {
    expect(bad(alerting)).not.toBe('accepted')
  })

  test('defaults fill every setting', () => {
    const a = stack().alerting
    expect(a.enabled).toBe(true)
    expect(a.rules.disk).toEqual({percent: 90, for: '10m'})
    expect(a.rules.qpsDrop).toEqual({nearZero: 0.1, serving: 1, window: '5m', lookback: '1h', for: '5m'})
    expect(a.route).toEqual({groupWait: '30s', groupInterval: '5m', repeatInterval: '4h'})
    expect(a.receivers).toEqual({webhook: undefined, email: undefined})
  })
})

describe('reading the APIs', () => {
  test('Alertmanager alerts: name, host, since, state, oldest first', () => {
    const body = JSON.stringify([
      {
        labels: {alertname: 'BackendDown', host: 'web2', severity: 'critical'},
        annotations: {summary: 's2'},
        startsAt: '2026-01-01T10:05:00Z',
        status: {state: 'active'},
      },
      {
        labels: {alertname: 'HostDown', host: 'web1', severity: 'critical'},
        annotations: {summary: 's1'},
        startsAt: '2026-01-01T10:00:00Z',
        status: {state: 'active'},
      },
      {labels: {alertname: 'BackendDown', host: 'web1'}, startsAt: '2026-01-01T10:01:00Z', status: {state: 'suppressed'}},
    ])
    expect(parseAmAlerts(body).map((a) => `${a.name} ${a.host} ${a.state} ${a.since}`)).toEqual([
      'HostDown web1 active 2026-01-01T10:00:00Z',
      'BackendDown web1 suppressed 2026-01-01T10:01:00Z',
      'BackendDown web2 active 2026-01-01T10:05:00Z',
    ])
    expect(ago('2026-01-01T10:00:00Z', Date.parse('2026-01-01T12:05:30Z'))).toBe('2h 5m')
    expect(ago('2026-01-01T10:00:00Z', Date.parse('2026-01-01T10:03:07Z'))).toBe('3m 7s')
  })

  test('notification counters per integration', () => {
    const metrics = [
      '# HELP alertmanager_notifications_total The total number of attempted notifications.',
      'alertmanager_notifications_total{integration="email"} 2',
      'alertmanager_notifications_total{integration="webhook"} 5',
      'alertmanager_notifications_failed_total{integration="webhook"} 1',
      'alertmanager_notifications_failed_total{integration="email"} 0',
    ].join('\n')
    expect(notificationCounts(metrics)).toEqual({email: {sent: 2, failed: 0}, webhook: {sent: 5, failed: 1}})
  })

  test('Prometheus: loaded rules, its Alertmanagers, a vector', () => {
    expect(
      parseRules(
        JSON.stringify({
          data: {
            groups: [
              {
                rules: [
                  {type: 'alerting', name: 'HostDown', health: 'ok'},
                  {type: 'recording', name: 'x', health: 'ok'},
                  {type: 'alerting', name: 'Bad', health: 'err', lastError: 'boom'},
                ],
              },
            ],
          },
        }),
      ),
    ).toEqual([
      {name: 'HostDown', health: 'ok'},
      {name: 'Bad', health: 'err', lastError: 'boom'},
    ])
    expect(parseAlertmanagers(JSON.stringify({data: {activeAlertmanagers: [{url: 'http://10.0.0.14:9093/api/v2/alerts'}]}}))).toEqual([
      'http://10.0.0.14:9093/api/v2/alerts',
    ])
    expect(parseVector(JSON.stringify({data: {result: [{metric: {instance: 'a'}, value: [1, '1']}]}}))).toEqual([
      {labels: {instance: 'a'}, value: 1},
    ])
  })
})
