import {existsSync} from 'node:fs'
import {hostMemoryMiB, hostProcesses} from './hosts.js'
import {labPaths, type LabPaths} from './paths.js'
import {servicePid, services, type ServiceName} from './services.js'
import {sshRun} from './ssh.js'
import {assertLabSupported, readState} from './state.js'

export interface HostStatus {
  name: string
  address: string
  roles: string[]
  state: 'running' | 'stopped'
  /** sshd accepted the lab key as deploy, host key verified. */
  ssh: boolean
  /** PSS of the guest's processes (shared image pages split between hosts). */
  memoryMiB?: number
}

export interface ServiceStatus {
  name: ServiceName
  url: string
  state: 'running' | 'stopped'
  pid?: number
}

export interface LabStatus {
  up: boolean
  hosts: HostStatus[]
  services: ServiceStatus[]
  sshKey: string
  knownHosts: string
  /** CA of pebble's API listener; roots.pem is the root of the certificates pebble issues. */
  acmeCa: string
  acmeRoots: string
}

export async function status(paths: LabPaths = labPaths()): Promise<LabStatus> {
  assertLabSupported()
  const state = await readState(paths)
  const hosts = await Promise.all(
    (state?.hosts ?? []).map(async (h): Promise<HostStatus> => {
      const running = (await hostProcesses(paths, h.name)).nspawn !== undefined
      const ssh = running && existsSync(paths.knownHosts) && (await sshRun(paths, h.address, 'true', {timeoutMs: 10_000})).code === 0
      return {...h, state: running ? 'running' : 'stopped', ssh, memoryMiB: running ? await hostMemoryMiB(paths, h.name) : undefined}
    }),
  )
  const svcs = await Promise.all(
    services(paths).map(async (s): Promise<ServiceStatus> => {
      const pid = await servicePid(s)
      return {name: s.name, url: s.url, state: pid === undefined ? 'stopped' : 'running', pid}
    }),
  )
  const up = state?.status === 'up' && hosts.every((h) => h.state === 'running') && svcs.every((s) => s.state === 'running')
  return {
    up,
    hosts,
    services: svcs,
    sshKey: paths.sshKey,
    knownHosts: paths.knownHosts,
    acmeCa: paths.pebble.ca,
    acmeRoots: paths.pebble.roots,
  }
}
