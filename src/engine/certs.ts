import {connect as tlsConnect} from 'node:tls'
import {Failure} from '../cli/errors.js'
import {PORTS} from '../components/ports.js'
import {type AcmeSource, type CertInfo, type CertPaths, type Challenge, issueCertificate} from '../components/tls/acme.js'
import type {Host, Inventory} from '../inventory/index.js'
import {Connection, type ConnectOptions} from '../remote/connection.js'
import {shq} from '../render/safe.js'
import {pool, runPlan} from './run.js'

const WEBROOT = '/var/www/acme/.well-known/acme-challenge'

/**
 * HTTP-01 behind a load balancer: the LB routes /.well-known/acme-challenge/ to the web servers (haproxy.cfg), so
 * the token goes on EVERY web server over SSH and the CA may reach any of them. No shared state on the LB, no
 * sticky routing, and it works unchanged when web servers face clients directly. Tokens are removed afterwards.
 */
export async function issueWithTokensOnWebServers(inv: Inventory, source: AcmeSource, paths: CertPaths, o: ConnectOptions): Promise<CertInfo> {
  const webs = inv.hosts.filter((h) => h.roles.includes('web'))
  const conns = await Promise.all(webs.map((h) => Connection.open(h, o)))
  try {
    return await issueCertificate(inv, source, paths, {
      put: async (ch: Challenge) => {
        await Promise.all(conns.map((c) => c.run(`umask 022; mkdir -p ${WEBROOT} && cat > ${shq(`${WEBROOT}/${ch.token}`)}`, {stdin: ch.content})))
      },
      remove: async (ch: Challenge) => {
        await Promise.all(conns.map((c) => c.run(`rm -f ${shq(`${WEBROOT}/${ch.token}`)}`, {check: false})))
      },
    })
  } finally {
    for (const c of conns) c.close()
  }
}

/** Pushes the certificate to the LB (PEM bundle) and web servers, validated, reloaded hitlessly (a rolling change). */
export async function deployCertificate(inv: Inventory, o: ConnectOptions & {concurrency: number}): Promise<void> {
  const hosts = inv.hosts.filter((h) => h.roles.includes('lb') || h.roles.includes('web'))
  const report = await runPlan(inv, hosts, {...o, apply: true, only: ['tls', 'nginx', 'haproxy']})
  const failed = report.hosts.filter((h) => h.status === 'failed' || h.status === 'skipped')
  if (failed.length) throw new Failure(`deploying the certificate failed: ${failed.map((h) => `${h.host}: ${h.error}`).join('; ')}`)
}

export interface Served {
  host: string
  serial?: string
  error?: string
}

function servedByLb(lb: Host, servername: string): Promise<Served> {
  return new Promise((resolve) => {
    const sock = tlsConnect({host: lb.address, port: PORTS.https, servername, rejectUnauthorized: false, timeout: 5000})
    sock.once('secureConnect', () => {
      const serial = sock.getPeerCertificate().serialNumber
      sock.destroy()
      resolve({host: lb.name, serial})
    })
    sock.once('error', (e) => resolve({host: lb.name, error: e.message}))
    sock.once('timeout', () => {
      sock.destroy()
      resolve({host: lb.name, error: 'timed out'})
    })
  })
}

/** The serial each LB and web server serves right now, checked live over TLS (web servers from themselves). */
export async function servedSerials(inv: Inventory, o: ConnectOptions): Promise<Served[]> {
  const hosts = inv.hosts.filter((h) => h.roles.includes('lb') || h.roles.includes('web'))
  const domain = inv.site.domain
  return pool(hosts, 10, async (h): Promise<Served> => {
    if (h.roles.includes('lb')) return servedByLb(h, domain)
    let conn: Connection | undefined
    try {
      conn = await Connection.open(h, o)
      const r = await conn.run(
        `openssl s_client -connect 127.0.0.1:${h.lb.backendPort} -servername ${shq(domain)} </dev/null 2>/dev/null | openssl x509 -noout -serial`,
        {root: false, check: false},
      )
      const serial = /serial=([0-9A-F]+)/i.exec(r.stdout)?.[1]
      return serial ? {host: h.name, serial: serial.toUpperCase()} : {host: h.name, error: 'no certificate served'}
    } catch (error) {
      return {host: h.name, error: error instanceof Error ? error.message : String(error)}
    } finally {
      conn?.close()
    }
  })
}

export function normaliseSerial(s: string): string {
  return s.replace(/:/g, '').replace(/^0+/, '').toUpperCase()
}

export interface RenewResult {
  renewed: boolean
  reason: string
  certificate?: CertInfo
  served?: Served[]
}

/**
 * Issue or renew when due (lock -> due? -> order -> write -> deploy -> check every host serves the new serial).
 * Nothing due: no request to the CA at all. Any failure before deployment leaves the old certificate in place.
 */
export async function renewCertificate(
  inv: Inventory,
  source: AcmeSource,
  paths: CertPaths,
  o: ConnectOptions & {concurrency: number; force?: boolean; days?: number; lockWaitMs: number; step?: (s: string) => void},
): Promise<RenewResult> {
  const {readCurrent, renewalDue, withLock} = await import('../components/tls/acme.js')
  return withLock(paths.lock, o.lockWaitMs, async () => {
    // Decided under the lock: a renewal that waited for another one finds the certificate fresh.
    const decision = renewalDue(readCurrent(paths), new Date(), {force: o.force, days: o.days})
    if (!decision.due) return {renewed: false, reason: decision.reason}
    o.step?.(`ordering a certificate for ${[inv.site.domain, ...inv.site.aliases].join(', ')} from ${source.directory} (${decision.reason})`)
    const certificate = await issueWithTokensOnWebServers(inv, source, paths, o)
    o.step?.(`issued serial ${certificate.serial}; deploying`)
    await deployCertificate(inv, o)
    const served = await servedSerials(inv, o)
    const wrong = served.filter((s) => !s.serial || normaliseSerial(s.serial) !== normaliseSerial(certificate.serial))
    if (wrong.length) throw new Failure(`new certificate ${certificate.serial} deployed, but not served by ${wrong.map((w) => `${w.host} (${w.error ?? w.serial})`).join(', ')}`)
    return {renewed: true, reason: decision.reason, certificate, served}
  })
}
