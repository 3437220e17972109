import {execFileSync} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {basename, dirname, extname, join} from 'node:path'
import {type CertRequest, type TlsMaterial, leafKey} from '../../engine/contract.js'
import type {Inventory} from '../../inventory/index.js'
import {checkTlsSource} from './check.js'

export type {TlsMaterial} from '../../engine/contract.js'

/** Per inventory: `.foobar/<inventory name>/` next to the inventory unless tls.source.state_dir says otherwise (pure). */
export function stateDirPath(inv: Inventory): string {
  const src = inv.tlsSource
  const configured = src && 'stateDir' in src ? src.stateDir : undefined
  return configured ?? join(dirname(inv.file), '.foobar', basename(inv.file, extname(inv.file)))
}

/** The state directory, created (0700) if missing: only for commands that create key material. */
export function stateDir(inv: Inventory): string {
  const dir = stateDirPath(inv)
  mkdirSync(dir, {recursive: true, mode: 0o700})
  return dir
}

/*
 * Stand-ins for material that does not exist yet, when it is only read (`plan`, `verify`): the plan shows them
 * as what provision will create; they are never written to a host (provision and `cert` create the real
 * material first, see createTlsMaterial).
 */
export const PENDING = {
  ca: '(new internal CA, created by provision)\n',
  cert: '(new certificate, created by provision)\n',
  key: '(new private key, created by provision)\n',
} as const

/** Whether a material value (or a file built from one) stands in for material not created yet. */
export const isPending = (content: string): boolean => Object.values(PENDING).some((p) => content.includes(p))

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, {stdio: ['ignore', 'ignore', 'pipe']})
  } catch (error) {
    const stderr = (error as {stderr?: Buffer}).stderr?.toString() ?? String(error)
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`)
  }
}

function ensureCa(dir: string, label: string): {cert: string; key: string} {
  const cert = join(dir, 'internal-ca.crt')
  const key = join(dir, 'internal-ca.key')
  if (!existsSync(cert) || !existsSync(key)) {
    openssl([
      'req',
      '-x509',
      '-new',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '3650',
      '-subj',
      `/CN=foobar internal CA for ${label}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ])
  }
  return {cert, key}
}

/** A leaf that is current: it exists, has the names asked for and was issued by this CA. */
function currentLeaf(dir: string, name: string, ca: {cert: string} | undefined, sans: string[]): {cert: string; key: string} | undefined {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  const sansFile = join(dir, `${name}.sans`)
  if (!ca || !existsSync(cert) || !existsSync(key) || !existsSync(sansFile) || readFileSync(sansFile, 'utf8') !== sans.join(','))
    return undefined
  try {
    const issuer = new X509Certificate(readFileSync(ca.cert))
    if (!new X509Certificate(readFileSync(cert)).verify(issuer.publicKey)) return undefined
  } catch {
    return undefined
  }
  return {cert, key}
}

/** A leaf signed by the internal CA; kept while its names (and its CA) stay the same, so re-runs change nothing. */
function ensureLeaf(dir: string, name: string, ca: {cert: string; key: string}, sans: string[]): {cert: string; key: string} {
  const current = currentLeaf(dir, name, ca, sans)
  if (current) return current
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  const sansFile = join(dir, `${name}.sans`)
  const want = sans.join(',')
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  writeFileSync(
    ext,
    `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${want}\n`,
  )
  openssl([
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    csr,
    '-subj',
    `/CN=${sans[0]!.replace(/^(DNS|IP):/, '')}`,
  ])
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '397',
    '-sha256',
    '-out',
    cert,
    '-extfile',
    ext,
  ])
  writeFileSync(sansFile, want)
  return {cert, key}
}

const read = (p: string) => readFileSync(p, 'utf8')

export interface MaterialOptions {
  /**
   * Create what is missing (the state directory, the internal CA, the leaves, the ACME placeholder): `provision`
   * and `foobar cert` (createTlsMaterial). Default: read only, nothing is written; what does not exist yet is a
   * stand-in (PENDING) that the plan shows as created by provision.
   */
  create?: boolean
}

/**
 * The run's material: the internal CA, the leaves the components asked for (`requests`, per host), and the site
 * certificate from the inventory's source. tls.source files are checked first (exit 2 naming the file and the
 * problem). Read only unless `create`.
 */
export function prepareTlsMaterial(inv: Inventory, requests: Record<string, CertRequest[]> = {}, o: MaterialOptions = {}): TlsMaterial {
  const files = checkTlsSource(inv)
  const dir = o.create ? stateDir(inv) : stateDirPath(inv)
  const caFiles = {cert: join(dir, 'internal-ca.crt'), key: join(dir, 'internal-ca.key')}
  const ca = o.create ? ensureCa(dir, inv.site.domain) : existsSync(caFiles.cert) && existsSync(caFiles.key) ? caFiles : undefined
  const internalCa = ca ? read(ca.cert) : PENDING.ca
  const leaf = (name: string, sans: string[]): {cert: string; key: string} => {
    const found = o.create ? ensureLeaf(dir, name, ca!, sans) : currentLeaf(dir, name, ca, sans)
    return found ? {cert: read(found.cert), key: read(found.key)} : {cert: PENDING.cert, key: PENDING.key}
  }
  const leaves: TlsMaterial['leaves'] = {}
  for (const [host, reqs] of Object.entries(requests)) {
    for (const r of reqs) leaves[leafKey(r.name, host)] = leaf(leafKey(r.name, host), r.sans)
  }
  const source = inv.tlsSource
  const names = [inv.site.domain, ...inv.site.aliases].map((n) => `DNS:${n}`)
  switch (source.type) {
    case 'self-signed': {
      const site = leaf('site', names)
      return {siteChain: site.cert + internalCa, siteKey: site.key, backendCa: internalCa, internalCa, leaves}
    }
    case 'files': {
      return {
        siteChain: files!.chain,
        siteKey: files!.key,
        backendCa: files!.caFile ?? read('/etc/ssl/certs/ca-certificates.crt'),
        internalCa,
        leaves,
      }
    }
    case 'acme': {
      const chainFile = join(dir, 'acme', 'site.crt')
      const keyFile = join(dir, 'acme', 'site.key')
      // HAProxy trusts the ACME chain's root and the internal CA, so a backend keeps verifying during the switch.
      const backendCa = (source.chainCaFile ? read(source.chainCaFile) : read('/etc/ssl/certs/ca-certificates.crt')) + internalCa
      if (!existsSync(chainFile) || !existsSync(keyFile)) {
        // Before the first `foobar cert issue` the daemons need a certificate to start with (and to answer the
        // HTTP-01 challenge): a placeholder from the internal CA, replaced when the real one is issued.
        const site = leaf('site', names)
        return {siteChain: site.cert + internalCa, siteKey: site.key, backendCa, internalCa, leaves, placeholder: true}
      }
      return {siteChain: read(chainFile), siteKey: read(keyFile), backendCa, internalCa, leaves}
    }
  }
}

/** What a run with this material would have to create first (empty: everything exists). */
export function pendingMaterial(m: TlsMaterial): string[] {
  const out: string[] = []
  if (isPending(m.internalCa)) out.push('the internal CA')
  if (isPending(m.siteChain) || isPending(m.siteKey)) out.push('the site certificate')
  const leaves = Object.entries(m.leaves).filter(([, l]) => isPending(l.cert) || isPending(l.key))
  if (leaves.length) out.push(`${leaves.length} internal certificate${leaves.length > 1 ? 's' : ''} (${leaves.map(([k]) => k).join(', ')})`)
  return out
}
