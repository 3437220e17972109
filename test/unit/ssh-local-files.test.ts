/*
 * Local files foobar reads before connecting (identity file, known_hosts) and secret files: regular files of
 * bounded size, opened without blocking. /dev/zero, a FIFO, a directory, a file that is not a key: each a prompt,
 * clear error (exit 2, naming the inventory field and the path), never a hang, a runaway read or a raw EISDIR.
 * No server is needed: every check happens before a connection is made.
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {Connection} from '../../src/remote/connection.js'
import {LocalFileError, MAX_LOCAL_FILE_BYTES, readLocalFile} from '../../src/remote/local-file.js'
import type {Host} from '../../src/inventory/index.js'
import {exitCodeOf} from '../../src/util/errors.js'
import {testInventory} from './support/fake-host.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-localfiles-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))
const FIFO = join(TMP, 'fifo')
execFileSync('mkfifo', [FIFO])
const DIR = join(TMP, 'a-directory')
mkdirSync(DIR)
const EMPTY_CONFIG = join(TMP, 'ssh_config')
writeFileSync(EMPTY_CONFIG, '')

/** web1 on a closed local port: a connection attempt would fail fast, but none must be made. */
function host(ssh: Partial<Host['ssh']>): Host {
  const h = testInventory(['web1 10.77.0.12 web']).hosts[0]!
  return {...h, address: '127.0.0.1', ssh: {...h.ssh, port: 9, connectTimeout: 2, identityFile: undefined, knownHosts: undefined, ...ssh}}
}

/** Opens, expecting a refusal within `ms`; returns the error. */
async function refused(h: Host, ms = 2000): Promise<Error> {
  const started = Date.now()
  const error = await Connection.open(h, {sshConfigFile: EMPTY_CONFIG}).then(
    (c) => {
      c.close()
      throw new Error('connected')
    },
    (e: unknown) => e as Error,
  )
  expect(Date.now() - started).toBeLessThan(ms)
  return error
}

describe('identity_file', () => {
  test('/dev/zero: refused at once as a character device, exit 2, naming the field and the path', async () => {
    const e = await refused(host({identityFile: '/dev/zero'}))
    expect(e).toBeInstanceOf(LocalFileError)
    expect(e.message).toBe('ssh.identity_file (host web1): /dev/zero is a character device, not a regular file')
    expect(exitCodeOf(e)).toBe(2)
  }, 10_000)

  test('a FIFO: refused without waiting for a writer', async () => {
    const e = await refused(host({identityFile: FIFO}))
    expect(e.message).toBe(`ssh.identity_file (host web1): ${FIFO} is a named pipe (FIFO), not a regular file`)
    expect(exitCodeOf(e)).toBe(2)
  }, 10_000)

  test('a directory: a clear message, not a raw EISDIR; exit 2', async () => {
    const e = await refused(host({identityFile: DIR}))
    expect(e.message).toBe(`ssh.identity_file (host web1): ${DIR} is a directory, not a regular file`)
    expect(e.message).not.toMatch(/EISDIR/)
    expect(exitCodeOf(e)).toBe(2)
  })

  test('missing: exit 2', async () => {
    const e = await refused(host({identityFile: join(TMP, 'nope')}))
    expect(e.message).toBe(`ssh.identity_file (host web1): ${join(TMP, 'nope')} does not exist`)
    expect(exitCodeOf(e)).toBe(2)
  })

  test('a file that is not a private key (a shadow file): refused without showing its content', async () => {
    const shadow = join(TMP, 'shadow')
    writeFileSync(shadow, 'root:$y$j9T$SECRETHASHVALUE:19000:0:99999:7:::\n', {mode: 0o600})
    const e = await refused(host({identityFile: shadow}))
    expect(e.message).toMatch(new RegExp(`^ssh\\.identity_file \\(host web1\\): ${shadow} is not a usable SSH private key`))
    expect(e.message).not.toContain('SECRETHASHVALUE')
    expect(exitCodeOf(e)).toBe(2)
  })

  test('a file over the bound is refused by its size', async () => {
    const big = join(TMP, 'big')
    writeFileSync(big, Buffer.alloc(MAX_LOCAL_FILE_BYTES + 1, 'a'))
    expect(() => readLocalFile(big, 'f')).toThrow(
      `f: ${big} is too large (${MAX_LOCAL_FILE_BYTES + 1} bytes; at most ${MAX_LOCAL_FILE_BYTES})`,
    )
    const e = await refused(host({identityFile: big}))
    expect(e.message).toMatch(/is too large/)
    expect(exitCodeOf(e)).toBe(2)
  })
})

describe('known_hosts', () => {
  test('a FIFO: refused at once (connect_timeout is not even needed), exit 2', async () => {
    const e = await refused(host({knownHosts: FIFO}))
    expect(e.message).toBe(`ssh.known_hosts (host web1): ${FIFO} is a named pipe (FIFO), not a regular file`)
    expect(exitCodeOf(e)).toBe(2)
  }, 10_000)

  test('a directory or a device: a clear message, exit 2', async () => {
    expect((await refused(host({knownHosts: DIR}))).message).toBe(`ssh.known_hosts (host web1): ${DIR} is a directory, not a regular file`)
    const e = await refused(host({knownHosts: '/dev/zero'}))
    expect(e.message).toBe('ssh.known_hosts (host web1): /dev/zero is a character device, not a regular file')
    expect(exitCodeOf(e)).toBe(2)
  })

  test('missing is fine (recorded on first use): the connection itself is what fails', async () => {
    const e = await refused(host({knownHosts: join(TMP, 'not-yet')}))
    expect(e.message).toMatch(/^web1: cannot connect to deploy@127\.0\.0\.1:9: .*ECONNREFUSED/)
    expect(exitCodeOf(e)).toBe(1)
  })
})
