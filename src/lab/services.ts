import {existsSync} from 'node:fs'
import {mkdir, readFile, stat, writeFile} from 'node:fs/promises'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'
import {Failure} from '../util/errors.js'
import {run, waitFor} from './exec.js'
import {APT_CACHE_DIR, BRIDGE_ADDRESS, PORTS, URLS, type LabPaths} from './paths.js'
import {livePid, startDetached, stopProcess} from './process.js'

export type ServiceName = 'apt-cache' | 'pebble-challtestsrv' | 'pebble'

export interface ServiceInfo {
  name: ServiceName
  url: string
  /** A string in the service's command line that makes it ours (PIDs get reused). */
  marker: string
  pidFile: string
  log: string
}

export function services(paths: LabPaths): ServiceInfo[] {
  const svc = (name: ServiceName, url: string, marker: string) => ({
    name,
    url,
    marker,
    pidFile: path.join(paths.run, `${name}.pid`),
    log: path.join(paths.logs, `${name}.log`),
  })
  return [
    svc('apt-cache', URLS.proxy, paths.aptCache.dir),
    svc('pebble-challtestsrv', URLS.dnsManagement, `-management ${BRIDGE_ADDRESS}:${PORTS.dnsManagement}`),
    svc('pebble', URLS.acmeDirectory, paths.pebble.config),
  ]
}

const service = (paths: LabPaths, name: ServiceName) => services(paths).find((s) => s.name === name)!

export function servicePid(s: ServiceInfo): Promise<number | undefined> {
  return livePid(s.pidFile, s.marker)
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({host: BRIDGE_ADDRESS, port, timeout: 1000})
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.on('connect', () => done(true))
    socket.on('error', () => done(false))
    socket.on('timeout', () => done(false))
  })
}

/** GET over HTTPS trusting only `ca` (pebble's listener CA). */
export function httpsGet(url: string, ca: string | Buffer, timeoutMs = 5000): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const req = https.get(url, {ca, timeout: timeoutMs}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', reject)
  })
}

async function start(s: ServiceInfo, file: string, args: string[], env?: NodeJS.ProcessEnv) {
  await startDetached({file, args, log: s.log, pidFile: s.pidFile, env: env && {...process.env, ...env}})
}

/** Wait for a service, failing early (with its log) if it exited. */
function waitService<T>(s: ServiceInfo, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return waitFor(
    async () => {
      // Asked twice: a service started through a wrapper that execs it (setpriv) has no readable command line for
      // the instant of the exec, which a single look can take for an exit.
      if ((await servicePid(s)) === undefined && (await new Promise((r) => setTimeout(r, 250)), (await servicePid(s)) === undefined)) {
        const log = (await readFile(s.log, 'utf8').catch(() => '')).trim().split('\n').slice(-3).join(' | ')
        throw new Failure(`${s.name} exited at start (${s.log}): ${log}`)
      }
      return probe()
    },
    {timeoutMs, failure: () => `${s.name} did not answer on ${s.url} within ${timeoutMs / 1000} s (see ${s.log})`},
  )
}

/** How long the cached archive indexes are served without asking the mirror. */
export const APT_INDEX_MAX_AGE_DAYS = 7
/** The suites' signed indexes, relative to the cache (the hosts' sources: see image.ts). */
export const APT_INDEXES = ['debrep/dists/bookworm', 'debrep/dists/bookworm-updates', 'secdeb/dists/bookworm-security'].map(
  (d) => `${d}/InRelease`,
)
/**
 * Whether the cache may serve its archive indexes as they are (apt-cacher-ng's SPfilePatternEx), given their
 * modification times (undefined: not cached). An index apt-cacher-ng treats as volatile (its default) is asked of the
 * mirror on every `apt-get update`, however warm the cache: a slow or stalled mirror then decides how long a lab
 * run takes. Frozen, the InRelease files name by-hash index files and packages the cache already holds, so a lab
 * run needs no mirror. Once any is older than the limit (or missing), they are volatile again for that run, and
 * the first update fetches them afresh (which sets their time).
 */
export function aptIndexesFrozen(mtimes: (Date | undefined)[], now: Date, maxAgeDays = APT_INDEX_MAX_AGE_DAYS): boolean {
  return mtimes.length > 0 && mtimes.every((t) => t !== undefined && now.getTime() - t.getTime() < maxAgeDays * 86_400_000)
}
/** apt-cacher-ng's pattern (extended regex on the cached path) for the suites' signed indexes. */
export const FROZEN_INDEX_PATTERN = '(^|/)dists/[^/]+/(InRelease|Release|Release\\.gpg)$'

/**
 * The hosts' apt proxy is a cache (apt-cacher-ng) on the bridge address: the first lab run fills it from the Debian
 * mirror, later runs (and `lab down --purge` + `up`) are served from ${APT_CACHE_DIR}. It only serves the Debian
 * archive and its security archive (ForceManaged: anything else is refused), listens on the bridge only, and runs as
 * Debian's apt-cacher-ng user. Its own config directory: the machine's /etc/apt-cacher-ng is not read. Its indexes
 * are served without asking the mirror while they are under a week old (aptIndexesFrozen).
 */
async function startAptCache(paths: LabPaths, log: (l: string) => void): Promise<void> {
  const s = service(paths, 'apt-cache')
  const c = paths.aptCache
  await mkdir(c.dir, {recursive: true})
  await mkdir(APT_CACHE_DIR, {recursive: true})
  const logDir = path.join(paths.logs, 'apt-cacher-ng')
  await mkdir(logDir, {recursive: true})
  const user = 'apt-cacher-ng'
  await run('chown', ['-R', `${user}:${user}`, APT_CACHE_DIR, logDir], {what: 'apt cache: own its directories'})
  const mtimes = await Promise.all(
    APT_INDEXES.map((f) =>
      stat(path.join(APT_CACHE_DIR, f)).then(
        (st) => st.mtime,
        () => undefined,
      ),
    ),
  )
  const frozen = aptIndexesFrozen(mtimes, new Date())
  const oldest = mtimes.every((t) => t !== undefined) ? new Date(Math.min(...mtimes.map((t) => t!.getTime()))) : undefined
  log(
    frozen
      ? `apt cache: the archive indexes of ${oldest!.toISOString().slice(0, 16)}Z are served without asking the mirror (for ${APT_INDEX_MAX_AGE_DAYS} days from then)`
      : `apt cache: the archive indexes are ${oldest ? `older than ${APT_INDEX_MAX_AGE_DAYS} days` : 'not all cached'}: this run fetches them from the mirror`,
  )
  await writeFile(
    c.config,
    `CacheDir: ${APT_CACHE_DIR}
LogDir: ${logDir}
SupportDir: /usr/lib/apt-cacher-ng
BindAddress: ${BRIDGE_ADDRESS}
Port: ${PORTS.proxy}
SocketPath: ${path.join(logDir, 'socket')}
ForeGround: 1
Remap-debrep: deb.debian.org/debian /debian ; http://deb.debian.org/debian
Remap-secdeb: deb.debian.org/debian-security /debian-security ; http://deb.debian.org/debian-security
ForceManaged: 1
ExThreshold: 4
ReportPage:
${frozen ? `SPfilePatternEx: ${FROZEN_INDEX_PATTERN}\n` : ''}`,
  )
  await start(s, 'setpriv', ['--reuid', user, '--regid', user, '--clear-groups', 'apt-cacher-ng', '-c', c.dir])
  await waitService(s, async () => ((await tcpOpen(PORTS.proxy)) ? true : undefined))
}

/** Pebble's listener: Debian ships no test certificates, so the lab makes its own CA and a cert for 10.77.0.1. */
async function ensurePebbleCerts(paths: LabPaths): Promise<void> {
  const p = paths.pebble
  await mkdir(p.dir, {recursive: true})
  if (existsSync(p.ca) && existsSync(p.cert) && existsSync(p.key)) return
  const openssl = (what: string, args: string[]) => run('openssl', args, {what: `pebble: ${what}`})
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes']
  await openssl('make the lab CA', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p.caKey,
    '-out',
    p.ca,
    '-days',
    '3650',
    '-subj',
    '/CN=foobar lab CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ])
  await openssl('make the listener certificate', [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    p.key,
    '-out',
    p.cert,
    '-days',
    '825',
    '-subj',
    `/CN=${BRIDGE_ADDRESS}`,
    '-CA',
    p.ca,
    '-CAkey',
    p.caKey,
    '-addext',
    `subjectAltName=IP:${BRIDGE_ADDRESS}`,
    '-addext',
    'basicConstraints=critical,CA:FALSE',
    '-addext',
    'extendedKeyUsage=serverAuth',
  ])
}

/** challtestsrv is the DNS pebble validates with: the site on the LB, every host by name. */
async function startChalltestsrv(paths: LabPaths, records: Array<{name: string; address: string}>): Promise<void> {
  const s = service(paths, 'pebble-challtestsrv')
  await start(s, 'pebble-challtestsrv', [
    '-dns01',
    `${BRIDGE_ADDRESS}:${PORTS.dns}`,
    '-http01',
    '',
    '-https01',
    '',
    '-tlsalpn01',
    '',
    '-management',
    `${BRIDGE_ADDRESS}:${PORTS.dnsManagement}`,
    '-defaultIPv4',
    '',
    '-defaultIPv6',
    '',
  ])
  await waitService(s, async () => ((await tcpOpen(PORTS.dnsManagement)) ? true : undefined))
  await setRecords(records)
}

/** The lab DNS's A records: each name set to its address alone, each of `clear` removed. */
export async function setRecords(records: Array<{name: string; address: string}>, clear: string[] = []): Promise<void> {
  const call = async (what: string, name: string, body: object) => {
    const res = await fetch(`${URLS.dnsManagement}/${what}`, {
      method: 'POST',
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    })
    if (!res.ok) throw new Failure(`pebble-challtestsrv: ${what} ${name} failed: HTTP ${res.status}`)
  }
  // add-a adds to what a name has: cleared first, so that a name moved (the site to a floating address) has one.
  for (const name of new Set([...clear, ...records.map((r) => r.name)])) await call('clear-a', name, {host: `${name}.`})
  for (const r of records) await call('add-a', r.name, {host: `${r.name}.`, addresses: [r.address]})
}

async function startPebble(paths: LabPaths): Promise<void> {
  const s = service(paths, 'pebble')
  const p = paths.pebble
  await ensurePebbleCerts(paths)
  const config = {
    pebble: {
      listenAddress: `${BRIDGE_ADDRESS}:${PORTS.acme}`,
      managementListenAddress: `${BRIDGE_ADDRESS}:${PORTS.acmeManagement}`,
      certificate: p.cert,
      privateKey: p.key,
      httpPort: 80,
      tlsPort: 443,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  }
  await writeFile(p.config, JSON.stringify(config, null, 2) + '\n')
  await start(s, 'pebble', ['-config', p.config, '-dnsserver', URLS.dns, '-strict=false'], {
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
  })
  const ca = await readFile(p.ca)
  const ok = async (url: string) => {
    const res = await httpsGet(url, ca).catch(() => undefined)
    return res?.status === 200 ? res.body : undefined
  }
  await waitService(s, () => ok(URLS.acmeDirectory))
  // Pebble makes a new issuing root at every start: publish the current one for clients of issued certs.
  await writeFile(p.roots, await waitService(s, () => ok(URLS.acmeRoots)))
}

/**
 * Starts the lab services (all, or only those named: a restart of what stopped while the hosts run). Pebble asks
 * challtestsrv for DNS, so a restarted challtestsrv gets the hosts' records again.
 */
export async function startServices(
  paths: LabPaths,
  records: Array<{name: string; address: string}>,
  only?: ServiceName[],
  log: (l: string) => void = () => {},
) {
  await mkdir(paths.run, {recursive: true})
  await mkdir(paths.logs, {recursive: true})
  const wanted = (name: ServiceName) => only === undefined || only.includes(name)
  if (wanted('apt-cache')) await startAptCache(paths, log)
  if (wanted('pebble-challtestsrv')) await startChalltestsrv(paths, records)
  if (wanted('pebble')) await startPebble(paths)
}

export async function stopServices(paths: LabPaths): Promise<void> {
  await Promise.all(
    services(paths).map(async (s) => {
      const pid = await servicePid(s)
      if (pid !== undefined) await stopProcess(pid, s.name, {timeoutMs: 5000})
    }),
  )
}
