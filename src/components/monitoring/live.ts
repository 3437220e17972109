import type {Host, Inventory} from '../../inventory/index.js'
import type {ScrapeTarget} from '../../engine/contract.js'
import type {Runner, Transport} from '../../remote/runner.js'
import {pool} from '../../util/pool.js'
import {shq} from '../../util/shell.js'
import {ADMIN_SOCKET} from '../haproxy/runtime.js'
import {NGINX_STUB_STATUS} from './paths.js'
import {prometheusUrl} from './server.js'
import {type Reading, buildVersion, haproxyStat, parseStubStatus, parseTargets, parseVersions} from './stats.js'
import {type QpsRange, type QpsSeries, parseRange, qpsQueries, rangeEnd} from './range.js'
import {monitoringHost} from './targets.js'

/*
 * Reading the clients over SSH: the QPS counters on the LB and the web servers, and each exporter's health, from
 * Prometheus when there is a monitoring host, else from the hosts themselves.
 */

/** The host's clock in the same round trip as the counter: rates do not depend on SSH latency. */
const STAMP = `printf '@@t %s\\n' "$(date +%s.%N)"`
const HTTPS_FRONTEND = 'https'

function stamped(host: string, out: string, count: (body: string) => number): Reading {
  const [first, ...rest] = out.split('\n')
  const at = Number(/^@@t (\S+)/.exec(first ?? '')?.[1])
  if (!Number.isFinite(at)) throw new Error(`${host}: no timestamp in the counter reading`)
  return {host, at, count: count(rest.join('\n'))}
}

/** Connections to the LBs and web servers, kept open across windows (`--watch`). */
export class QpsReader {
  private constructor(
    private readonly lbs: Runner[],
    private readonly webs: Runner[],
  ) {}

  static async open(hosts: Host[], transport: Transport): Promise<QpsReader> {
    const lbHosts = hosts.filter((h) => h.roles.includes('lb'))
    const webHosts = hosts.filter((h) => h.roles.includes('web'))
    const conns = new Map<string, Runner>()
    try {
      for (const h of [...lbHosts, ...webHosts]) if (!conns.has(h.name)) conns.set(h.name, await transport.open(h))
    } catch (error) {
      for (const c of conns.values()) c.close()
      throw error
    }
    return new QpsReader(
      lbHosts.map((h) => conns.get(h.name)!),
      webHosts.map((h) => conns.get(h.name)!),
    )
  }

  /** One reading of every counter: HAProxy's https frontend `req_tot`, nginx's `requests`. */
  async read(): Promise<{lb: Reading[]; web: Reading[]}> {
    const lb = Promise.all(
      this.lbs.map(async (c) => {
        const r = await c.run(`${STAMP}; echo 'show stat' | socat stdio ${ADMIN_SOCKET}`)
        return stamped(c.host.name, r.stdout, (csv) => haproxyStat(csv, HTTPS_FRONTEND, 'FRONTEND', 'req_tot'))
      }),
    )
    const web = Promise.all(
      this.webs.map(async (c) => {
        const r = await c.run(`${STAMP}; curl -fsS -m 5 ${shq(NGINX_STUB_STATUS)}`)
        return stamped(c.host.name, r.stdout, parseStubStatus)
      }),
    )
    return {lb: await lb, web: await web}
  }

  close(): void {
    for (const c of new Set([...this.lbs, ...this.webs])) c.close()
  }
}

export interface QpsHistory {
  /** Unix seconds (the monitoring host's clock, rounded down to the step). */
  start: number
  end: number
  stepSeconds: number
  queries: {lb?: string; web?: string}
  series: QpsSeries[]
}

/**
 * QPS over time from Prometheus on the monitoring host, over one SSH connection kept open across draws (`--watch`):
 * the LBs' sum and each web server, over `range` up to the host's own now.
 */
export class QpsHistoryReader {
  private constructor(
    private readonly conn: Runner,
    private readonly lbs: string[],
    private readonly webs: string[],
  ) {}

  static async open(mon: Host, hosts: Host[], transport: Transport): Promise<QpsHistoryReader> {
    const names = (role: 'lb' | 'web') => hosts.filter((h) => h.roles.includes(role)).map((h) => h.name)
    return new QpsHistoryReader(await transport.open(mon), names('lb'), names('web'))
  }

  async read(range: QpsRange): Promise<QpsHistory> {
    const now = Number((await this.conn.run('date +%s', {root: false})).stdout.trim())
    if (!Number.isFinite(now)) throw new Error(`${this.conn.host.name}: no clock reading`)
    const end = rangeEnd(now, range)
    const start = end - range.sinceSeconds
    const queries = qpsQueries(this.lbs, this.webs, range)
    const api = `${prometheusUrl(this.conn.host)}/api/v1/query_range`
    const ask = async (query: string) => {
      const params = [`query=${query}`, `start=${start}`, `end=${end}`, `step=${range.stepSeconds}`]
      return (await this.conn.run(`curl -fsS -m 20 -G ${params.map((p) => `--data-urlencode ${shq(p)}`).join(' ')} ${shq(api)}`)).stdout
    }
    // The LBs' sum has no host label: named after the LBs it adds up.
    const lbName = this.lbs.length === 1 ? this.lbs[0]! : `lb (${this.lbs.join('+')})`
    const [lb, web] = await Promise.all([
      queries.lb ? ask(queries.lb).then((j) => parseRange(j, 'lb', () => lbName)) : [],
      queries.web ? ask(queries.web).then((j) => parseRange(j, 'web', (m) => m.host ?? '?')) : [],
    ])
    return {start, end, stepSeconds: range.stepSeconds, queries, series: [...lb, ...web]}
  }

  /** The hosts selected that Prometheus had nothing for over the range. */
  missing(history: QpsHistory): string[] {
    const have = new Set(history.series.map((s) => s.name))
    const lbMissing = this.lbs.length > 0 && !history.series.some((s) => s.role === 'lb')
    return [...(lbMissing ? this.lbs : []), ...this.webs.filter((w) => !have.has(w))]
  }

  close(): void {
    this.conn.close()
  }
}

export interface ClientStatus {
  host: string
  job: string
  target: string
  up: boolean
  /** ISO time of the last scrape (Prometheus's, or now when read over SSH). */
  lastScrape?: string
  version?: string
  error?: string
}

export interface MonitorStatus {
  source: 'prometheus' | 'ssh'
  clients: ClientStatus[]
}

const BUILD_INFO = '{__name__=~"node_exporter_build_info|nginxexporter_build_info|haproxy_process_build_info|mysqld_exporter_build_info"}'

/** Every client of the inventory (of `hosts`): up or down, last scrape, version. */
export async function monitorStatus(
  inv: Inventory,
  hosts: Host[],
  targets: ScrapeTarget[],
  options: {transport: Transport; concurrency: number},
): Promise<MonitorStatus> {
  const names = new Set(hosts.map((h) => h.name))
  const wanted = targets.filter((t) => names.has(t.host))
  const mon = monitoringHost(inv)
  if (mon) {
    const conn = await options.transport.open(mon)
    try {
      const api = prometheusUrl(mon)
      const targets = parseTargets((await conn.run(`curl -fsS -m 10 ${shq(`${api}/api/v1/targets?state=active`)}`)).stdout)
      const versions = parseVersions(
        (await conn.run(`curl -fsS -m 10 -G --data-urlencode ${shq(`query=${BUILD_INFO}`)} ${shq(`${api}/api/v1/query`)}`)).stdout,
      )
      const clients = wanted.map((w): ClientStatus => {
        const t = targets.find((x) => x.job === w.job && x.host === w.host)
        if (!t) return {host: w.host, job: w.job, target: w.target, up: false, error: 'not in Prometheus (run foobar provision)'}
        return {
          host: w.host,
          job: w.job,
          target: w.target,
          up: t.up,
          lastScrape: t.lastScrape,
          version: versions.get(`${w.job} ${w.host}`),
          ...(t.error ? {error: t.error} : {}),
        }
      })
      return {source: 'prometheus', clients}
    } finally {
      conn.close()
    }
  }
  const perHost = await pool(hosts, options.concurrency, async (host): Promise<ClientStatus[]> => {
    const mine = wanted.filter((t) => t.host === host.name)
    if (mine.length === 0) return []
    let conn: Runner
    try {
      conn = await options.transport.open(host)
    } catch (error) {
      return mine.map((t) => ({
        host: t.host,
        job: t.job,
        target: t.target,
        up: false,
        error: error instanceof Error ? error.message : String(error),
      }))
    }
    try {
      return await Promise.all(mine.map((t) => scrapeOverSsh(conn, t.host, t.job, t.target, t.url)))
    } finally {
      conn.close()
    }
  })
  return {source: 'ssh', clients: perHost.flat()}
}

/** The host fetches its own exporter on its private address, as the monitoring server would. */
async function scrapeOverSsh(conn: Runner, host: string, job: string, target: string, url: string): Promise<ClientStatus> {
  const r = await conn.run(`curl -fsS -m 5 ${shq(url)}`, {check: false})
  const lastScrape = new Date().toISOString()
  if (r.code !== 0) return {host, job, target, up: false, lastScrape, error: (r.stderr || `curl exit ${r.code}`).trim().split('\n').pop()}
  return {host, job, target, up: true, lastScrape, version: buildVersion(r.stdout)}
}
