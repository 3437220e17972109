import {spawn} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync} from 'node:fs'
import {Agent} from 'node:https'
import {join} from 'node:path'
import acme from 'acme-client'
import {Failure, UserError} from '../../util/errors.js'
import type {Inventory, TlsSource} from '../../inventory/index.js'
import {stateDir} from './material.js'

/*
 * The site certificate over ACME (acme-client). Account key and certificate live in the inventory's state
 * directory (0700, keys 0600); a renewal replaces them only after the new certificate was issued in full.
 */

export type AcmeSource = Extract<TlsSource, {type: 'acme'}>

export interface CertPaths {
  dir: string
  accountKey: string
  key: string
  chain: string
  lock: string
}

export function acmePaths(inv: Inventory): CertPaths {
  const dir = join(stateDir(inv), 'acme')
  mkdirSync(dir, {recursive: true, mode: 0o700})
  chmodSync(dir, 0o700)
  return {
    dir,
    accountKey: join(dir, 'account.key'),
    key: join(dir, 'site.key'),
    chain: join(dir, 'site.crt'),
    lock: join(dir, 'renew.lock'),
  }
}

export function acmeSource(inv: Inventory, directory?: string): AcmeSource {
  const src = inv.tlsSource
  if (src.type !== 'acme')
    throw new UserError(
      `tls.source is ${src.type}: foobar cert works with tls.source.type acme`,
      [],
      ['Set tls.source: {type: acme, directory: URL} in the inventory.'],
    )
  return directory ? {...src, directory} : src
}

export interface CertInfo {
  serial: string
  notBefore: Date
  notAfter: Date
  names: string[]
  issuer: string
}

export function certInfo(chainPem: string): CertInfo {
  const info = acme.crypto.readCertificateInfo(chainPem)
  const x = new X509Certificate(acme.crypto.splitPemChain(chainPem)[0]!)
  return {
    serial: x.serialNumber,
    notBefore: info.notBefore,
    notAfter: info.notAfter,
    names: info.domains.altNames,
    issuer:
      x.issuer
        .split('\n')
        .find((l: string) => l.startsWith('CN='))
        ?.slice(3) ?? x.issuer,
  }
}

export interface DueDecision {
  due: boolean
  reason: string
}

/** Renew when a third of the lifetime is left (certbot, certmagic), or --days N, or --force (pure). */
export function renewalDue(info: CertInfo | undefined, now: Date, o: {days?: number; force?: boolean}): DueDecision {
  if (!info) return {due: true, reason: 'no certificate yet'}
  if (o.force) return {due: true, reason: 'forced'}
  const left = info.notAfter.getTime() - now.getTime()
  const daysLeft = left / 86_400_000
  if (o.days !== undefined)
    return daysLeft <= o.days
      ? {due: true, reason: `${daysLeft.toFixed(1)} days left (--days ${o.days})`}
      : {due: false, reason: `${daysLeft.toFixed(1)} days left`}
  const lifetime = info.notAfter.getTime() - info.notBefore.getTime()
  return left <= lifetime / 3
    ? {due: true, reason: `${daysLeft.toFixed(1)} days left, under a third of the lifetime`}
    : {due: false, reason: `${daysLeft.toFixed(1)} days left`}
}

export function readCurrent(paths: CertPaths): CertInfo | undefined {
  return existsSync(paths.chain) ? certInfo(readFileSync(paths.chain, 'utf8')) : undefined
}

/**
 * A lock so that two renewals (cron and a person, say) never collide: flock(1) on the lock file, held by a child
 * process for as long as `fn` runs. The kernel releases it when its holder exits (even when killed), so a lock is
 * "stale" exactly when no live process holds it: the file itself (empty or with a dead pid) means nothing. The
 * holder's pid is written into the file for the message another renewal shows.
 */
export async function withLock<T>(lockFile: string, waitMs: number, fn: () => Promise<T>): Promise<T> {
  const fd = openSync(lockFile, constants.O_RDWR | constants.O_CREAT, 0o600)
  closeSync(fd)
  // flock holds the lock while `cat` reads our stdin: it ends when we close it, or when this process dies.
  const holder = spawn(
    'flock',
    [
      '--exclusive',
      '--wait',
      String(Math.max(0, waitMs) / 1000),
      '--conflict-exit-code',
      '75',
      lockFile,
      'sh',
      '-c',
      'echo locked; exec cat >/dev/null',
    ],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  )
  let stderr = ''
  holder.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<number | null>((resolve) => holder.on('close', (code) => resolve(code)))
  const locked = await new Promise<boolean>((resolve, reject) => {
    holder.stdout.once('data', () => resolve(true))
    holder.once('error', (e) => reject(new Failure(`cannot lock ${lockFile}: flock(1) did not run (${e.message})`)))
    void exited.then(() => resolve(false))
  })
  if (!locked) {
    const code = await exited
    if (code === 75) {
      const pid = readFileSync(lockFile, 'utf8').trim()
      throw new Failure(`another renewal is running (${/^\d+$/.test(pid) ? `pid ${pid}, ` : ''}lock ${lockFile})`)
    }
    throw new Failure(`cannot lock ${lockFile}: flock exited ${code}: ${stderr.trim()}`)
  }
  try {
    writeFileSync(lockFile, `${process.pid}\n`)
    return await fn()
  } finally {
    try {
      writeFileSync(lockFile, '')
    } catch {
      // the directory went away: nothing to tidy
    }
    holder.stdin.end()
    await exited
  }
}

export interface Challenge {
  token: string
  content: string
}

export interface IssueHooks {
  /** Put the http-01 token where every host that may answer for the name serves it. */
  put(ch: Challenge): Promise<void>
  remove(ch: Challenge): Promise<void>
}

function writeSecret(path: string, content: string): void {
  const tmp = `${path}.tmp`
  writeFileSync(tmp, content, {mode: 0o600})
  renameSync(tmp, path)
}

/** Orders a certificate for the site's names; writes key and chain only when the CA has issued it in full. */
export async function issueCertificate(inv: Inventory, source: AcmeSource, paths: CertPaths, hooks: IssueHooks): Promise<CertInfo> {
  if (source.challenge !== 'http-01')
    throw new UserError('only the http-01 challenge is built in; dns-01 needs tls.source.dns_hook (not implemented yet)')
  const agent = source.apiCaFile ? new Agent({ca: readFileSync(source.apiCaFile)}) : undefined
  // Trust a private ACME CA (pebble in the lab) for the directory's own API, without touching the process.
  if (agent) acme.axios.defaults.httpsAgent = agent
  await checkDirectory(source.directory, agent)
  if (!existsSync(paths.accountKey)) writeSecret(paths.accountKey, (await acme.crypto.createPrivateEcdsaKey('P-256')).toString())
  const client = new acme.Client({directoryUrl: source.directory, accountKey: readFileSync(paths.accountKey)})
  const key = source.keyType === 'rsa' ? await acme.crypto.createPrivateRsaKey(2048) : await acme.crypto.createPrivateEcdsaKey('P-256')
  const names = [inv.site.domain, ...inv.site.aliases]
  const [, csr] = await acme.crypto.createCsr({commonName: names[0], altNames: names}, key)
  let chain: string
  try {
    chain = await client.auto({
      csr,
      email: source.email,
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // acme-client's own pre-check resolves names with this machine's DNS; the CA validates for real anyway.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => {
        if (!/^[A-Za-z0-9_-]+$/.test(challenge.token)) throw new Error(`unexpected token from the CA: ${JSON.stringify(challenge.token)}`)
        await hooks.put({token: challenge.token, content: keyAuthorization})
      },
      challengeRemoveFn: async (_authz, challenge, keyAuthorization) => {
        await hooks.remove({token: challenge.token, content: keyAuthorization})
      },
    })
  } catch (error) {
    throw new Failure(`certificate for ${names.join(', ')} not issued by ${source.directory}: ${describeAcmeError(error)}`)
  }
  writeSecret(paths.key, key.toString())
  writeSecret(paths.chain, chain)
  return certInfo(chain)
}

/** acme-client's retry logic hides connection errors: ask the directory once first, for a message that says what happened. */
async function checkDirectory(url: string, agent: Agent | undefined): Promise<void> {
  const {request} = await import(url.startsWith('https:') ? 'node:https' : 'node:http')
  await new Promise<void>((resolve, reject) => {
    const req = request(url, {agent, timeout: 15_000}, (res: import('node:http').IncomingMessage) => {
      res.resume()
      if (res.statusCode === 200) resolve()
      else reject(new Failure(`the ACME directory ${url} answered HTTP ${res.statusCode}; the current certificate stays deployed`))
    })
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), {code: 'ETIMEDOUT'})))
    req.on('error', (e: NodeJS.ErrnoException) =>
      reject(new Failure(`the ACME directory ${url} is unreachable (${e.code ?? e.message}); the current certificate stays deployed`)),
    )
    req.end()
  })
}

function describeAcmeError(error: unknown): string {
  const e = error as {code?: string; message?: string; cause?: {code?: string}}
  const code = e.code ?? e.cause?.code
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT' || code === 'ENOTFOUND')
    return `the CA is unreachable (${code}); the current certificate stays deployed`
  return `${e.message ?? String(error)}; the current certificate stays deployed`
}
