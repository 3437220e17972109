import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {basename, dirname, extname, join} from 'node:path'
import {UserError} from '../../util/errors.js'
import {type CertRequest, type TlsMaterial, leafKey} from '../../engine/contract.js'
import type {Inventory} from '../../inventory/index.js'

export type {TlsMaterial} from '../../engine/contract.js'

/** Per inventory, 0700: `.foobar/<inventory name>/` next to the inventory unless tls.source.state_dir says otherwise. */
export function stateDir(inv: Inventory): string {
  const src = inv.tlsSource
  const configured = src && 'stateDir' in src ? src.stateDir : undefined
  const dir = configured ?? join(dirname(inv.file), '.foobar', basename(inv.file, extname(inv.file)))
  mkdirSync(dir, {recursive: true, mode: 0o700})
  return dir
}

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

/** A leaf signed by the internal CA; kept while its names stay the same, so re-runs change nothing. */
function ensureLeaf(dir: string, name: string, ca: {cert: string; key: string}, sans: string[]): {cert: string; key: string} {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  const sansFile = join(dir, `${name}.sans`)
  const want = sans.join(',')
  if (existsSync(cert) && existsSync(key) && existsSync(sansFile) && readFileSync(sansFile, 'utf8') === want) return {cert, key}
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

/**
 * The run's material: the internal CA, the leaves the components asked for (`requests`, per host), and the site
 * certificate from the inventory's source.
 */
export function prepareTlsMaterial(inv: Inventory, requests: Record<string, CertRequest[]> = {}): TlsMaterial {
  const dir = stateDir(inv)
  const ca = ensureCa(dir, inv.site.domain)
  const internalCa = read(ca.cert)
  const leaves: TlsMaterial['leaves'] = {}
  for (const [host, reqs] of Object.entries(requests)) {
    for (const r of reqs) {
      const leaf = ensureLeaf(dir, leafKey(r.name, host), ca, r.sans)
      leaves[leafKey(r.name, host)] = {cert: read(leaf.cert), key: read(leaf.key)}
    }
  }
  const source = inv.tlsSource
  const names = [inv.site.domain, ...inv.site.aliases].map((n) => `DNS:${n}`)
  switch (source.type) {
    case 'self-signed': {
      const leaf = ensureLeaf(dir, 'site', ca, names)
      return {siteChain: read(leaf.cert) + internalCa, siteKey: read(leaf.key), backendCa: internalCa, internalCa, leaves}
    }
    case 'files': {
      for (const p of [source.cert, source.key]) if (!existsSync(p)) throw new UserError(`tls.source: certificate file ${p} does not exist`)
      const chain = read(source.cert)
      return {
        siteChain: chain,
        siteKey: read(source.key),
        backendCa: source.caFile ? read(source.caFile) : read('/etc/ssl/certs/ca-certificates.crt'),
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
        const leaf = ensureLeaf(dir, 'site', ca, names)
        return {siteChain: read(leaf.cert) + internalCa, siteKey: read(leaf.key), backendCa, internalCa, leaves, placeholder: true}
      }
      return {siteChain: read(chainFile), siteKey: read(keyFile), backendCa, internalCa, leaves}
    }
  }
}
