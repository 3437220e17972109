import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {UserError} from '../util/errors.js'
import {run} from './exec.js'
import {argvOf} from './process.js'
import type {LabPaths} from './paths.js'
import type {LabHost} from './spec.js'

/** What `lab up` booted, for `status` and for `up` on a running lab (lab.json in the lab directory). */
export interface LabState {
  status: 'starting' | 'up' | 'down'
  hosts: LabHost[]
  domain: string
  aliases: string[]
  startedAt: string
}

export function labSupported(): boolean {
  return process.platform === 'linux' && process.getuid?.() === 0
}

export function assertLabSupported(): void {
  if (!labSupported()) {
    throw new UserError(
      'foobar lab needs root on Linux (systemd-nspawn, network namespaces)',
      [],
      ['sudo foobar lab up   (on a Linux machine with systemd-container and debootstrap installed)'],
    )
  }
}

/** Programs `lab up` runs on this machine, and the Debian packages that provide them. */
const TOOLS: Record<string, string> = {
  debootstrap: 'debootstrap',
  'systemd-nspawn': 'systemd-container',
  ip: 'iproute2',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  openssl: 'openssl',
  'apt-cacher-ng': 'apt-cacher-ng',
  setpriv: 'util-linux',
  pebble: 'pebble',
  'pebble-challtestsrv': 'pebble',
}

export function assertLabTools(): void {
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']
  const missing = Object.keys(TOOLS).filter((tool) => !dirs.some((d) => d && existsSync(path.join(d, tool))))
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((t) => TOOLS[t]))].join(' ')
    throw new UserError(
      `foobar lab needs these programs on this machine: ${missing.join(', ')}`,
      [],
      [`apt-get install -y --no-install-recommends ${packages}`],
    )
  }
}

export async function readState(paths: LabPaths): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(paths.state, 'utf8')) as LabState
  } catch {
    return undefined
  }
}

export async function writeState(paths: LabPaths, state: LabState): Promise<void> {
  await mkdir(paths.root, {recursive: true})
  await writeFile(paths.state, JSON.stringify(state, null, 2) + '\n')
}

/** One `lab up`/`lab down` at a time; a lock left by a killed run (its PID is gone) is taken over. */
export async function withLock<T>(paths: LabPaths, fn: () => Promise<T>): Promise<T> {
  await mkdir(paths.root, {recursive: true})
  for (;;) {
    try {
      await writeFile(paths.lock, `${process.pid}\n`, {flag: 'wx'})
      break
    } catch {
      const holder = Number.parseInt(await readFile(paths.lock, 'utf8').catch(() => ''), 10)
      if (holder > 0 && holder !== process.pid && (await argvOf(holder)) !== undefined) {
        throw new UserError(`another foobar lab command is running (pid ${holder})`, [`lock file: ${paths.lock}`])
      }
      await rm(paths.lock, {force: true})
    }
  }
  try {
    return await fn()
  } finally {
    await rm(paths.lock, {force: true})
  }
}

/** The lab's SSH key (made once): the hosts trust it for root and deploy. */
export async function ensureKey(paths: LabPaths): Promise<string> {
  if (!existsSync(paths.sshKey) || !existsSync(`${paths.sshKey}.pub`)) {
    await mkdir(path.dirname(paths.sshKey), {recursive: true, mode: 0o700})
    await rm(paths.sshKey, {force: true})
    await rm(`${paths.sshKey}.pub`, {force: true})
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'foobar-lab', '-f', paths.sshKey], {
      what: 'lab SSH key: ssh-keygen',
    })
  }
  return readFile(`${paths.sshKey}.pub`, 'utf8')
}

/** The passwords the lab inventories point at (random, made once). */
export async function ensureSecret(paths: LabPaths): Promise<void> {
  const secrets: Array<[string, number]> = [
    [paths.replPassword, 18],
    [paths.appPassword, 18],
    // VRRPv2 carries 8 characters: 6 random bytes in base64url.
    [paths.vrrpPassword, 6],
  ]
  for (const [file, bytes] of secrets) {
    if (existsSync(file)) continue
    await mkdir(path.dirname(file), {recursive: true, mode: 0o700})
    await writeFile(file, randomBytes(bytes).toString('base64url') + '\n', {mode: 0o600})
  }
}

/** Plain `address type key` lines, the hosts' real keys read from their own disks. */
export async function writeKnownHosts(paths: LabPaths, lines: string[]): Promise<void> {
  await writeFile(paths.knownHosts, lines.join('\n') + '\n', {mode: 0o644})
}
