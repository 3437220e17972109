/*
 * Certificate material (src/components/tls/check.ts, material.ts, init.ts; src/engine/desired.ts and plan.ts for
 * the private-key rule): tls.source files are checked before anything is planned; a private key is secret whatever
 * a component declared; plan creates no key material (provision does) and provision never makes a new internal CA
 * over hosts that already carry one.
 */
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {STACK} from '../../src/components/index.js'
import {checkTlsSource} from '../../src/components/tls/check.js'
import {createTlsMaterial} from '../../src/components/tls/init.js'
import {PENDING, pendingMaterial, prepareTlsMaterial} from '../../src/components/tls/material.js'
import {TLS_PATHS} from '../../src/components/tls/profile.js'
import {type Component, emptyState, file} from '../../src/engine/contract.js'
import {certRequests, defineStack, desiredState} from '../../src/engine/desired.js'
import type {HostFacts} from '../../src/engine/facts.js'
import {planHost} from '../../src/engine/plan.js'
import {runPlan} from '../../src/engine/run.js'
import {parseInventory} from '../../src/inventory/index.js'
import {UserError} from '../../src/util/errors.js'
import {type FakeFleet, fakeFleet, testInventory} from './support/fake-host.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-tls-material-'))
const fleets: FakeFleet[] = []
afterAll(() => {
  fleets.forEach((f) => f.cleanup())
  rmSync(TMP, {recursive: true, force: true, maxRetries: 5})
})

const p = (name: string) => join(TMP, name)
const openssl = (...args: string[]) => execFileSync('openssl', args, {stdio: ['ignore', 'ignore', 'pipe']})

/** A CA, an intermediate, a leaf for www.example.test + example.test, an unrelated key, a leaf for another name. */
function makePki(): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl('req', '-x509', '-new', ...ec, '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '30', '-subj', '/CN=Test Root')
  openssl('req', '-new', ...ec, '-keyout', p('int.key'), '-out', p('int.csr'), '-subj', '/CN=Test Intermediate')
  writeFileSync(p('int.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n')
  openssl(
    'x509',
    '-req',
    '-in',
    p('int.csr'),
    '-CA',
    p('ca.crt'),
    '-CAkey',
    p('ca.key'),
    '-CAcreateserial',
    '-days',
    '30',
    '-extfile',
    p('int.ext'),
    '-out',
    p('int.crt'),
  )
  const leaf = (name: string, sans: string) => {
    openssl('req', '-new', ...ec, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`)
    writeFileSync(p(`${name}.ext`), `subjectAltName=${sans}\n`)
    openssl(
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('int.crt'),
      '-CAkey',
      p('int.key'),
      '-CAcreateserial',
      '-days',
      '30',
      '-extfile',
      p(`${name}.ext`),
      '-out',
      p(`${name}.crt`),
    )
  }
  leaf('site', 'DNS:www.example.test,DNS:example.test')
  leaf('other', 'DNS:www.other.test')
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', p('unrelated.key'))
  const read = (n: string) => readFileSync(p(n), 'utf8')
  writeFileSync(p('fullchain.crt'), read('site.crt') + read('int.crt'))
  writeFileSync(p('wrong-order.crt'), read('site.crt') + read('ca.crt'))
  writeFileSync(p('other-chain.crt'), read('other.crt') + read('int.crt'))
  writeFileSync(p('chain-with-key.crt'), read('site.crt') + read('int.crt') + read('site.key'))
}
makePki()

const KEY_BODY = readFileSync(p('site.key'), 'utf8').split('\n')[1]!

function filesInventory(cert: string, key: string, extra = ''): ReturnType<typeof parseInventory> {
  const dir = mkdtempSync(join(TMP, 'inv-'))
  const text = [
    'site: {domain: www.example.test, aliases: [example.test], email: admin@example.test}',
    'ssh: {user: deploy}',
    'firewall: {admin_cidrs: [10.0.0.0/24]}',
    'monitoring: {enabled: false}',
    `tls: {source: {type: files, cert: ${JSON.stringify(cert)}, key: ${JSON.stringify(key)}${extra}}}`,
    'hosts:',
    '  - {name: lb1, address: 10.0.0.11, roles: [lb]}',
    '  - {name: web1, address: 10.0.0.12, roles: [web]}',
    '',
  ].join('\n')
  return parseInventory(text, join(dir, 'site.yml'))
}

function problems(cert: string, key: string, extra = ''): {message: string; details: string[]} {
  try {
    checkTlsSource(filesInventory(cert, key, extra))
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    const e = error as UserError
    // Never the content: not a line of the key, whatever went wrong.
    expect(JSON.stringify([e.message, e.details, e.suggestions])).not.toContain(KEY_BODY)
    return {message: e.message, details: e.details}
  }
  return {message: '', details: []}
}

describe('tls.source files are checked before anything is planned', () => {
  test('a certificate chain and its key that match, cover the names and verify: accepted', () => {
    expect(problems(p('fullchain.crt'), p('site.key')).details).toEqual([])
    expect(problems(p('site.crt'), p('site.key'), `, ca_file: ${JSON.stringify(p('ca.crt'))}`).details).toEqual([])
  })

  test('cert and key swapped: both named, exit 2 (UserError), the key never shown', () => {
    const r = problems(p('site.key'), p('fullchain.crt'))
    expect(r.message).toMatch(/^tls\.source: the certificate files are not usable/)
    expect(r.details).toEqual([
      `tls.source.cert (${p('site.key')}) is a private key, not a certificate (are cert and key swapped?)`,
      `tls.source.key (${p('fullchain.crt')}) is a certificate, not a private key (are cert and key swapped?)`,
    ])
  })

  test('a private key inside the certificate chain is refused (it would be published)', () => {
    expect(problems(p('chain-with-key.crt'), p('site.key')).details).toEqual([
      `tls.source.cert (${p('chain-with-key.crt')}) contains a private key: it would be published with the certificate; keep only the certificates there`,
    ])
  })

  test('/etc/shadow (or any non-PEM file) as cert and key: not PEM', () => {
    const shadow = p('shadow')
    writeFileSync(shadow, 'root:$y$j9T$abcdefgh$0123456789:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n')
    const r = problems(shadow, shadow)
    expect(r.details).toEqual([
      `tls.source.cert (${shadow}) is not PEM (no -----BEGIN CERTIFICATE----- block)`,
      `tls.source.key (${shadow}) is not PEM (no -----BEGIN PRIVATE KEY----- block)`,
    ])
    expect(JSON.stringify(r)).not.toContain('$y$j9T')
  })

  test('a key that is not the certificate key: do not match', () => {
    expect(problems(p('fullchain.crt'), p('unrelated.key')).details).toEqual([
      `tls.source.cert (${p('fullchain.crt')}) and tls.source.key (${p('unrelated.key')}) do not match (the key is not the certificate's)`,
    ])
  })

  test('a chain whose next certificate did not issue the one before: does not verify', () => {
    const [d] = problems(p('wrong-order.crt'), p('site.key')).details
    expect(d).toMatch(
      /^tls\.source\.cert \(.*wrong-order\.crt\): the chain does not verify: certificate 2 \(CN=Test Root\) did not issue certificate 1/,
    )
  })

  test('a certificate for other names: the domain and aliases it does not cover', () => {
    expect(problems(p('other-chain.crt'), p('other.key')).details).toEqual([
      `tls.source.cert (${p('other-chain.crt')}): the certificate does not cover www.example.test, example.test (it names DNS:www.other.test)`,
    ])
  })

  test('missing, a directory, a FIFO: named, without reading (no hang)', () => {
    const fifo = p('fifo')
    execFileSync('mkfifo', [fifo])
    const t0 = Date.now()
    expect(problems(p('nope.crt'), TMP).details).toEqual([
      `tls.source.cert (${p('nope.crt')}) does not exist`,
      `tls.source.key (${TMP}) is a directory, not a file`,
    ])
    expect(problems(fifo, p('site.key')).details).toEqual([`tls.source.cert (${fifo}) is not a regular file (a device, FIFO or socket)`])
    expect(Date.now() - t0).toBeLessThan(2000)
  })

  test('prepareTlsMaterial checks them too (before any state is created)', () => {
    const inv = filesInventory(p('site.key'), p('fullchain.crt'))
    expect(() => prepareTlsMaterial(inv, {}, {create: true})).toThrow(UserError)
    expect(existsSync(join(inv.file, '..', '.foobar'))).toBe(false)
  })
})

describe('a private key is secret whatever its component declared', () => {
  const inv = testInventory(['web1 10.77.0.12 web'])
  const forgetful: Component = {
    name: 'forgetful',
    appliesTo: () => true,
    desired: () => ({
      ...emptyState(),
      files: [
        file('/etc/forgetful/server.crt', `${readFileSync(p('site.key'), 'utf8')}`),
        file('/etc/forgetful/rsa.pem', '-----BEGIN RSA PRIVATE KEY-----\nABC\n-----END RSA PRIVATE KEY-----\n', {mode: 0o664}),
        file('/etc/forgetful/plain.conf', 'listen 80;\n'),
      ],
    }),
  }
  const stack = defineStack([forgetful])
  const facts = (files: HostFacts['files']): HostFacts => ({
    os: 'debian',
    virt: 'none',
    packages: {},
    files,
    services: {},
    pendingReloads: [],
    live: {},
  })

  test('desiredState: secret, and no permission bit for others', () => {
    const d = desiredState(stack, inv, inv.hosts[0]!)
    expect(d.files.map((f) => [f.path, f.secret, f.mode.toString(8)])).toEqual([
      ['/etc/forgetful/server.crt', true, '640'],
      ['/etc/forgetful/rsa.pem', true, '660'],
      ['/etc/forgetful/plain.conf', undefined, '644'],
    ])
  })

  test('the plan never shows it: created, changed, or held by the file on the host', () => {
    const d = desiredState(stack, inv, inv.hosts[0]!)
    const created = planHost(d, facts({}))
    expect(JSON.stringify(created)).toContain('(secret content not shown)')
    const diffs = created.changes.flatMap((c) => (c.kind === 'file' ? [c.diff ?? ''] : []))
    expect(diffs.join('\n')).not.toContain(KEY_BODY)
    expect(diffs.join('\n')).not.toContain('ABC')
    // The host's copy holds a key (cert and key were swapped before): the diff leaves it out.
    const plain = d.files.find((f) => f.path === '/etc/forgetful/plain.conf')!
    const held = planHost(
      {...d, files: [plain]},
      facts({
        [plain.path]: {exists: true, sha256: 'x', content: readFileSync(p('site.key'), 'utf8'), mode: 0o644, owner: 'root', group: 'root'},
      }),
    )
    expect(held.changes).toMatchObject([
      {kind: 'file', action: 'update', diff: '(content differs; the file on the host holds a private key, not shown)'},
    ])
    // And a plan handed a desired state that did not go through desiredState: the same rule.
    const raw = planHost({...d, files: [{...plain, content: readFileSync(p('site.key'), 'utf8')}]}, facts({}))
    expect(raw.changes).toMatchObject([{kind: 'file', diff: '(secret content not shown)'}])
  })
})

describe('plan creates no key material; provision does, and never a new CA over hosts that have one', () => {
  function selfSigned(): {inv: ReturnType<typeof testInventory>; state: string} {
    const state = join(mkdtempSync(join(TMP, 'state-')), 'state')
    return {
      inv: testInventory(['lb1 10.77.0.11 lb', 'web1 10.77.0.12 web'], {yaml: `tls: {source: {type: self-signed, state_dir: ${state}}}\n`}),
      state,
    }
  }

  test('read only: nothing is created, what is missing is a stand-in', () => {
    const {inv, state} = selfSigned()
    const m = prepareTlsMaterial(inv, certRequests(STACK, inv))
    expect(existsSync(state)).toBe(false)
    expect(m.internalCa).toBe(PENDING.ca)
    expect(m.siteKey).toBe(PENDING.key)
    expect(pendingMaterial(m)).toEqual(['the internal CA', 'the site certificate'])
  })

  test('plan (runPlan without apply) with an empty state directory: no file created; the plan says what provision creates', async () => {
    const {inv, state} = selfSigned()
    mkdirSync(state, {mode: 0o700})
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    const report = await runPlan(STACK, inv, inv.hosts, {transport: fleet.transport, apply: false, concurrency: 2})
    expect(readdirSync(state)).toEqual([])
    const web1 = report.hosts.find((h) => h.host === 'web1')!
    const cert = web1.changes.find((c) => c.kind === 'file' && c.path === TLS_PATHS.cert)
    expect(cert).toMatchObject({action: 'create'})
    expect(cert!.kind === 'file' && cert!.diff).toContain('+(new certificate, created by provision)')
    const key = web1.changes.find((c) => c.kind === 'file' && c.path === TLS_PATHS.key)
    expect(key).toMatchObject({diff: '(secret content not shown)'})
    // No host was written to either.
    for (const h of Object.values(fleet.hosts)) expect(h.exists(TLS_PATHS.cert)).toBe(false)
  })

  test('provision (createTlsMaterial): creates the CA and key pairs once; read-only afterwards finds them all', async () => {
    const {inv, state} = selfSigned()
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    const made = await createTlsMaterial(STACK, inv, {transport: fleet.transport})
    expect(readdirSync(state)).toEqual(expect.arrayContaining(['internal-ca.crt', 'internal-ca.key', 'site.crt', 'site.key']))
    expect(made.siteKey).toMatch(/-----BEGIN PRIVATE KEY-----/)
    const again = prepareTlsMaterial(inv, certRequests(STACK, inv))
    expect(pendingMaterial(again)).toEqual([])
    expect(again).toEqual(made)
    // The CA existed: no host is asked again.
    const opened = fleet.transport.opened.length
    await createTlsMaterial(STACK, inv, {transport: fleet.transport})
    expect(fleet.transport.opened.length).toBe(opened)
  })

  test('no CA in the state directory but a host carries foobar internal CA: exit 2 naming the directory, nothing created', async () => {
    const {inv, state} = selfSigned()
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    fleet.hosts.lb1!.refusing = 'Connection refused'
    fleet.hosts.web1!.put('/etc/foobar/db-endpoint/ca.pem', '-----BEGIN CERTIFICATE-----\nOLD CA\n-----END CERTIFICATE-----\n')
    const error = await createTlsMaterial(STACK, inv, {transport: fleet.transport}).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(UserError)
    const e = error as UserError
    expect(e.message).toBe(
      `the state directory ${state} has no internal CA, but the hosts already carry foobar's internal CA: not creating a new one`,
    )
    expect(e.details).toEqual(['web1: /etc/foobar/db-endpoint/ca.pem'])
    expect(e.suggestions[0]).toContain(`Copy the state directory ${state}`)
    expect(existsSync(state)).toBe(false)
  })

  test('the site certificate from the internal CA on a host (self-signed) counts too', async () => {
    const {inv, state} = selfSigned()
    const fleet = fakeFleet(inv)
    fleets.push(fleet)
    fleet.hosts.lb1!.put(TLS_PATHS.backendCa, 'x')
    await expect(createTlsMaterial(STACK, inv, {transport: fleet.transport})).rejects.toThrow(/already carry foobar's internal CA/)
    expect(existsSync(state)).toBe(false)
  })
})
