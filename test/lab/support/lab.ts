/**
 * Helpers for lab tests: the lab's paths, SSH to a host (system `ssh`, lab key, host key verified against the
 * lab's known_hosts), pebble's URLs and CA. The lab itself is brought up once by test/lab/global-setup.ts.
 */
import {rmSync} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {inject} from 'vitest'
import {loadInventory} from '../../../src/inventory/index.js'
import {httpsGet, labPaths, readState, sshRun, up, URLS, type LabHost, type LabSpec, type SshOptions} from '../../../src/lab/index.js'

export const LAB_INVENTORY = 'inventories/lab.yml'
export const paths = labPaths()
export {URLS}

/** True when global setup brought the lab up (root on Linux); lab tests use `describe.skipIf(!labIsUp())`. */
export function labIsUp(): boolean {
  return inject('labUp')
}

/** The lab's spec from the lab inventory: what global setup boots. */
export async function labSpec(file = LAB_INVENTORY): Promise<LabSpec> {
  const inv = await loadInventory(file)
  return {
    hosts: inv.hosts.map(({name, address, roles}) => ({name, address, roles})),
    domain: inv.site.domain,
    aliases: inv.site.aliases,
    vip: inv.hosts.find((h) => h.roles.includes('lb') && h.lb.vip !== undefined)?.lb.vip,
  }
}

/** The hosts that are up, as recorded by `lab up`. */
export async function labHosts(): Promise<LabHost[]> {
  const state = await readState(paths)
  if (!state) throw new Error(`no lab state in ${paths.state}: is the lab up?`)
  return state.hosts
}

export async function labHost(name: string): Promise<LabHost> {
  const host = (await labHosts()).find((h) => h.name === name)
  if (!host) throw new Error(`no lab host ${name}`)
  return host
}

/** Run a command on a host as deploy (or opts.user); resolves with {code, stdout, stderr}, never throws on exit code. */
export async function ssh(host: LabHost | string, command: string, opts: SshOptions = {}) {
  const address = typeof host === 'string' ? (await labHost(host)).address : host.address
  return sshRun(paths, address, command, opts)
}

/** Like ssh() but throws with the host, command and output when the command fails. */
export async function sshOk(host: LabHost | string, command: string, opts: SshOptions = {}): Promise<string> {
  const r = await ssh(host, command, opts)
  if (r.code !== 0) {
    const name = typeof host === 'string' ? host : host.name
    throw new Error(`${name}: \`${command}\` exited ${r.code}\n${r.stderr}${r.stdout}`)
  }
  return r.stdout
}

/** apt-get through the lab's proxy (the image has none configured: proxying is foobar's job via the inventory). */
export const APT = `sudo DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::http::Proxy=${URLS.proxy}`

/** Pebble: its API trusts the lab CA (ca.pem); certificates it issues chain to roots.pem (new at every start). */
export const pebble = {
  directory: URLS.acmeDirectory,
  caFile: paths.pebble.ca,
  rootsFile: paths.pebble.roots,
  dnsServer: URLS.dns,
  async ca(): Promise<Buffer> {
    return readFile(paths.pebble.ca)
  },
  async get(url: string) {
    return httpsGet(url, await readFile(paths.pebble.ca))
  },
}

/**
 * The lab with `spec`'s hosts, for a file that needs another set (a 4th host): `lab up` on the running lab boots the
 * new hosts and stops those no longer wanted, the hosts in both untouched. `forget`: stopped hosts whose disks are
 * removed, so that nothing of them is left for the files that follow.
 */
export async function setLabHosts(spec: LabSpec, options: Parameters<typeof up>[1] = {}, forget: string[] = []): Promise<void> {
  const r = await up(spec, options)
  if (r.resized)
    console.log(`lab: booted [${r.resized.added.join(', ')}], stopped [${r.resized.stopped.join(', ')}] in ${r.seconds.toFixed(1)} s`)
  for (const name of forget) {
    if (r.hosts.some((h) => h.name === name)) throw new Error(`${name} is still one of the lab's hosts: not removing its disk`)
    rmSync(paths.host(name).dir, {recursive: true, force: true, maxRetries: 5})
  }
}
