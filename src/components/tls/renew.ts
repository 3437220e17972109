import {Failure} from '../../util/errors.js'
import type {Stack} from '../../engine/desired.js'
import {runPlan} from '../../engine/run.js'
import {PORTS} from '../ports.js'
import {createTlsMaterial, refuseNewCaOverExisting} from './init.js'
import {type AcmeSource, type CertInfo, type CertPaths, type Challenge, issueCertificate} from './acme.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner, Transport} from '../../remote/runner.js'
import {pool} from '../../util/pool.js'
import {tlsHandshake} from '../../util/probes.js'
import {shq} from '../../util/shell.js'

type Reach = {transport: Transport}

const WEBROOT = '/var/www/acme/.well-known/acme-challenge'

/**
 * HTTP-01 behind a load balancer: the LB routes /.well-known/acme-challenge/ to the web servers (haproxy.cfg), so
 * the token goes on EVERY web server over SSH and the CA may reach any of them. No shared state on the LB, no
 * sticky routing, and it works unchanged when web servers face clients directly. Tokens are removed afterwards.
 */
export async function issueWithTokensOnWebServers(inv: Inventory, source: AcmeSource, paths: CertPaths, o: Reach): Promise<CertInfo> {
  const webs = inv.hosts.filter((h) => h.roles.includes('web'))
  const conns = await Promise.all(webs.map((h) => o.transport.open(h)))
  try {
    return await issueCertificate(inv, source, paths, {
      put: async (ch: Challenge) => {
        await Promise.all(
          conns.map((c) => c.run(`umask 022; mkdir -p ${WEBROOT} && cat > ${shq(`${WEBROOT}/${ch.token}`)}`, {stdin: ch.content})),
        )
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
export async function deployCertificate(stack: Stack, inv: Inventory, o: Reach & {concurrency: number}): Promise<void> {
  const hosts = inv.hosts.filter((h) => h.roles.includes('lb') || h.roles.includes('web'))
  // The internal CA and leaves the deployed configs need, created where missing (never a new CA over hosts that have one).
  const material = await createTlsMaterial(stack, inv, {transport: o.transport, concurrency: o.concurrency})
  const report = await runPlan(stack, inv, hosts, {...o, apply: true, only: ['nginx', 'haproxy'], material})
  const failed = report.hosts.filter((h) => h.status === 'failed' || h.status === 'skipped')
  if (failed.length) throw new Failure(`deploying the certificate failed: ${failed.map((h) => `${h.host}: ${h.error}`).join('; ')}`)
}

export interface Served {
  host: string
  serial?: string
  error?: string
}

async function servedByLb(lb: Host, servername: string): Promise<Served> {
  try {
    return {host: lb.name, serial: (await tlsHandshake(lb.address, PORTS.https, {servername, rejectUnauthorized: false})).serial}
  } catch (error) {
    return {host: lb.name, error: error instanceof Error ? error.message : String(error)}
  }
}

/** The serial each LB and web server serves right now, checked live over TLS (web servers from themselves). */
export async function servedSerials(inv: Inventory, o: Reach): Promise<Served[]> {
  const hosts = inv.hosts.filter((h) => h.roles.includes('lb') || h.roles.includes('web'))
  const domain = inv.site.domain
  return pool(hosts, 10, async (h): Promise<Served> => {
    if (h.roles.includes('lb')) return servedByLb(h, domain)
    let conn: Runner | undefined
    try {
      conn = await o.transport.open(h)
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
  stack: Stack,
  inv: Inventory,
  source: AcmeSource,
  paths: CertPaths,
  o: Reach & {concurrency: number; force?: boolean; days?: number; lockWaitMs: number; step?: (s: string) => void},
): Promise<RenewResult> {
  const {readCurrent, renewalDue, withLock} = await import('./acme.js')
  return withLock(paths.lock, o.lockWaitMs, async () => {
    // Decided under the lock: a renewal that waited for another one finds the certificate fresh.
    const decision = renewalDue(readCurrent(paths), new Date(), {force: o.force, days: o.days})
    if (!decision.due) return {renewed: false, reason: decision.reason}
    // Before asking the CA: a control machine without the state directory that provisioned the hosts stops here.
    await refuseNewCaOverExisting(stack, inv, {transport: o.transport, concurrency: o.concurrency})
    o.step?.(
      `ordering a certificate for ${[inv.site.domain, ...inv.site.aliases].join(', ')} from ${source.directory} (${decision.reason})`,
    )
    const certificate = await issueWithTokensOnWebServers(inv, source, paths, o)
    o.step?.(`issued serial ${certificate.serial}; deploying`)
    await deployCertificate(stack, inv, o)
    const served = await servedSerials(inv, o)
    const wrong = served.filter((s) => !s.serial || normaliseSerial(s.serial) !== normaliseSerial(certificate.serial))
    if (wrong.length)
      throw new Failure(
        `new certificate ${certificate.serial} deployed, but not served by ${wrong.map((w) => `${w.host} (${w.error ?? w.serial})`).join(', ')}`,
      )
    return {renewed: true, reason: decision.reason, certificate, served}
  })
}
