import {type KeyObject, X509Certificate, createPrivateKey} from 'node:crypto'
import {closeSync, fstatSync, openSync, readSync, statSync} from 'node:fs'
import {constants} from 'node:fs'
import {UserError} from '../../util/errors.js'
import type {Inventory} from '../../inventory/index.js'
import {PRIVATE_KEY_BLOCK} from '../../engine/desired.js'

/*
 * Certificate material from outside (tls.source: files) is checked before anything is planned: regular files of
 * bounded size, PEM, a certificate chain in `cert` and its private key in `key`, a chain that verifies link by
 * link, names that cover the site's domain and aliases. A problem is bad input (exit 2) that names the file and
 * what is wrong, and never shows the content.
 */

export {PRIVATE_KEY_BLOCK}

export const hasPrivateKey = (content: string): boolean => PRIVATE_KEY_BLOCK.test(content)

/** Certificate files are small; anything larger is not one (and is never read whole). */
const MAX_PEM_BYTES = 1024 * 1024

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n[\s\S]*?-----END \1-----/g

export interface PemBlock {
  label: string
  text: string
}

export function pemBlocks(content: string): PemBlock[] {
  return [...content.matchAll(PEM_BLOCK)].map((m) => ({label: m[1]!, text: m[0]}))
}

/**
 * Reads a local PEM file: a regular file (not a FIFO, device or directory) of at most 1 MiB, opened without
 * blocking. Throws a plain message (the caller names the setting).
 */
export function readPemFile(path: string): string {
  let st
  try {
    st = statSync(path)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new Error(code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`)
  }
  if (st.isDirectory()) throw new Error('is a directory, not a file')
  if (!st.isFile()) throw new Error('is not a regular file (a device, FIFO or socket)')
  if (st.size > MAX_PEM_BYTES) throw new Error(`is ${st.size} bytes: too large for a PEM certificate or key`)
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK)
  } catch (error) {
    throw new Error(`cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
  }
  try {
    if (!fstatSync(fd).isFile()) throw new Error('is not a regular file')
    const buf = Buffer.alloc(MAX_PEM_BYTES + 1)
    let n = 0
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, null)
      if (r === 0) break
      n += r
      if (n > MAX_PEM_BYTES) throw new Error('is too large for a PEM certificate or key')
    }
    return buf.subarray(0, n).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

export interface CheckedFiles {
  chain: string
  key: string
  caFile?: string
}

/** Checks a certificate chain and its key (contents), for the names; returns the problems, each one line. */
export function certificateProblems(
  o: {chain: string; key: string; chainName: string; keyName: string; names: string[]},
  now = new Date(),
): string[] {
  const problems: string[] = []
  const chainBlocks = pemBlocks(o.chain)
  const keyBlocks = pemBlocks(o.key)
  const certs = chainBlocks.filter((b) => b.label === 'CERTIFICATE')
  const keys = keyBlocks.filter((b) => PRIVATE_KEY_BLOCK.test(b.text))

  if (hasPrivateKey(o.chain))
    problems.push(
      certs.length === 0
        ? `${o.chainName} is a private key, not a certificate (are cert and key swapped?)`
        : `${o.chainName} contains a private key: it would be published with the certificate; keep only the certificates there`,
    )
  else if (chainBlocks.length === 0) problems.push(`${o.chainName} is not PEM (no -----BEGIN CERTIFICATE----- block)`)
  else if (certs.length === 0) problems.push(`${o.chainName} holds no certificate (found ${chainBlocks.map((b) => b.label).join(', ')})`)

  if (keys.length === 0) {
    if (keyBlocks.some((b) => b.label === 'CERTIFICATE'))
      problems.push(`${o.keyName} is a certificate, not a private key (are cert and key swapped?)`)
    else if (keyBlocks.length === 0) problems.push(`${o.keyName} is not PEM (no -----BEGIN PRIVATE KEY----- block)`)
    else problems.push(`${o.keyName} holds no private key (found ${keyBlocks.map((b) => b.label).join(', ')})`)
  } else if (keys.length > 1) problems.push(`${o.keyName} holds ${keys.length} private keys; it must hold exactly one`)

  let key: KeyObject | undefined
  if (keys.length === 1) {
    if (/ENCRYPTED/.test(keys[0]!.text) || /Proc-Type: 4,ENCRYPTED/.test(keys[0]!.text))
      problems.push(`${o.keyName} is encrypted with a passphrase; the daemons need it unencrypted (file mode 0600)`)
    else {
      try {
        key = createPrivateKey(keys[0]!.text)
      } catch {
        problems.push(`${o.keyName} is not a valid private key (the PEM block does not parse)`)
      }
    }
  }

  const parsed: X509Certificate[] = []
  for (const [i, b] of certs.entries()) {
    try {
      parsed.push(new X509Certificate(b.text))
    } catch {
      problems.push(`${o.chainName}: certificate ${i + 1} does not parse`)
      return problems
    }
  }
  if (parsed.length === 0) return problems
  const leaf = parsed[0]!
  if (key && !leaf.checkPrivateKey(key)) problems.push(`${o.chainName} and ${o.keyName} do not match (the key is not the certificate's)`)
  for (let i = 0; i + 1 < parsed.length; i++) {
    const [child, issuer] = [parsed[i]!, parsed[i + 1]!]
    if (!child.checkIssued(issuer) || !child.verify(issuer.publicKey))
      problems.push(
        `${o.chainName}: the chain does not verify: certificate ${i + 2} (${oneLine(issuer.subject)}) did not issue certificate ${i + 1} (${oneLine(child.subject)}); order: leaf first, then each issuer`,
      )
  }
  const missing = o.names.filter((n) => leaf.checkHost(n, {subject: 'default'}) === undefined)
  if (missing.length)
    problems.push(
      `${o.chainName}: the certificate does not cover ${missing.join(', ')} (it names ${leaf.subjectAltName ?? oneLine(leaf.subject)})`,
    )
  if (new Date(leaf.validTo).getTime() < now.getTime()) problems.push(`${o.chainName}: the certificate expired on ${leaf.validTo}`)
  return problems
}

const oneLine = (dn: string) => dn.split('\n').join(', ')

/**
 * tls.source files: read and checked (nothing is created). Other sources: nothing to check here. Throws a
 * UserError (exit 2) that lists every problem, naming the setting and the file.
 */
export function checkTlsSource(inv: Inventory): CheckedFiles | undefined {
  const source = inv.tlsSource
  if (source.type !== 'files') return undefined
  const problems: string[] = []
  const read = (setting: string, path: string): string | undefined => {
    try {
      return readPemFile(path)
    } catch (error) {
      problems.push(`${setting} (${path}) ${(error as Error).message}`)
      return undefined
    }
  }
  const chain = read('tls.source.cert', source.cert)
  const key = read('tls.source.key', source.key)
  const caFile = source.caFile ? read('tls.source.ca_file', source.caFile) : undefined
  if (chain !== undefined && key !== undefined) {
    problems.push(
      ...certificateProblems({
        chain,
        key,
        chainName: `tls.source.cert (${source.cert})`,
        keyName: `tls.source.key (${source.key})`,
        names: [inv.site.domain, ...inv.site.aliases],
      }),
    )
  }
  if (caFile !== undefined) {
    const blocks = pemBlocks(caFile)
    if (hasPrivateKey(caFile))
      problems.push(`tls.source.ca_file (${source.caFile}) contains a private key; it must hold CA certificates only`)
    else if (!blocks.some((b) => b.label === 'CERTIFICATE'))
      problems.push(`tls.source.ca_file (${source.caFile}) is not PEM (no -----BEGIN CERTIFICATE----- block)`)
  }
  if (problems.length)
    throw new UserError(
      `tls.source: the certificate files are not usable (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
      problems,
      ['tls.source.cert: the PEM certificate chain (leaf first, then intermediates); tls.source.key: its unencrypted PEM private key.'],
    )
  return {chain: chain!, key: key!, caFile}
}
