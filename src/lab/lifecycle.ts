import {existsSync} from 'node:fs'
import {readdir, readFile, rm, rmdir, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {Failure, UserError} from '../util/errors.js'
import {run, sleep} from './exec.js'
import {bootHost, hostProcesses, labMounts, prepareHost, stopHost, waitHostKeys, waitSsh, writeEtcHosts} from './hosts.js'
import {ensureImage, type ImageResult} from './image.js'
import {addHostNetwork, ensureBridge, labLinks, labNetns, netnsPids, removeHostNetwork, removeNetwork} from './network.js'
import {labPaths, NAME_PREFIX, type LabPaths} from './paths.js'
import {allProcesses, childrenOf, killNow, stopProcess, type ProcessInfo} from './process.js'
import {type ServiceName, servicePid, services, setRecords, startServices, stopServices} from './services.js'
import {dnsRecords, hostRecordName, planHosts, type LabHost, type LabSpec} from './spec.js'
import {
  assertLabSupported,
  assertLabTools,
  ensureKey,
  ensureSecret,
  readState,
  withLock,
  writeKnownHosts,
  writeState,
  type LabState,
} from './state.js'

const PROPAGATE_DIR = '/run/systemd/nspawn/propagate'
const SERVICE_PROGRAMS = new Set(['apt-cacher-ng', 'pebble', 'pebble-challtestsrv'])

export interface UpOptions {
  /** How many hosts (default: the spec's); see planHosts. */
  hosts?: number
  /**
   * Per host, from boot to sshd accepting the lab key (normally 3-5 s). The default, 120 s, outlasts systemd's 90 s
   * start-job timeout, so one stalled unit in a guest's boot delays the lab instead of failing it. Hosts boot at
   * once and share two cores: beyond 30 hosts the default grows by 4 s a host (50 hosts boot in about 100 s).
   */
  readyTimeoutMs?: number
  log?: (line: string) => void
}

export interface UpResult {
  alreadyUp: boolean
  hosts: LabHost[]
  seconds: number
  /** Absent when the lab was already up. */
  image?: ImageResult
  /** A lab that was up with other hosts: the hosts booted and stopped (the others untouched). */
  resized?: {added: string[]; stopped: string[]}
  /** Lab services found stopped on a lab that was up, and started again (its hosts untouched). */
  restarted?: ServiceName[]
  sshKey: string
  knownHosts: string
}

export interface DownResult {
  stopped: string[]
  purged: boolean
  seconds: number
}

/** Run every task; if any failed, throw one error that names each failed host or service. */
async function settleAll(tasks: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(tasks)
  const errors = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []))
  if (errors.length > 0) throw new Failure(errors.join('\n'))
}

function sameHosts(a: LabHost[], b: LabHost[]): boolean {
  const key = (hs: LabHost[]) => hs.map((h) => `${h.name}=${h.address}`).join(',')
  return key(a) === key(b)
}

async function hostsRunning(paths: LabPaths, state: LabState): Promise<boolean> {
  const hosts = await Promise.all(state.hosts.map((h) => hostProcesses(paths, h.name)))
  return hosts.every((p) => p.nspawn !== undefined && p.supervisor !== undefined)
}

async function stoppedServices(paths: LabPaths): Promise<ServiceName[]> {
  const svcs = services(paths)
  const pids = await Promise.all(svcs.map((s) => servicePid(s)))
  return svcs.filter((_, i) => pids[i] === undefined).map((s) => s.name)
}

export async function up(spec: LabSpec, opts: UpOptions = {}): Promise<UpResult> {
  assertLabSupported()
  assertLabTools()
  const started = Date.now()
  const hosts = planHosts(spec, opts.hosts)
  const paths = labPaths()
  const log = opts.log ?? (() => {})
  return withLock(paths, async () => {
    const base = {hosts, sshKey: paths.sshKey, knownHosts: paths.knownHosts}
    const current = await readState(paths)
    if (current?.status === 'up' && (await hostsRunning(paths, current))) {
      if (!sameHosts(current.hosts, hosts)) {
        const moved = hosts.filter((h) => current.hosts.some((c) => c.name === h.name && c.address !== h.address))
        if (moved.length > 0) {
          const names = current.hosts.map((h) => `${h.name} ${h.address}`).join(', ')
          throw new UserError(
            `the lab is already up with ${current.hosts.length} hosts (${names}): ${moved.map((h) => `${h.name} is wanted on ${h.address}`).join(', ')}`,
            [],
            ['foobar lab down', `foobar lab up --hosts ${hosts.length}`],
          )
        }
        const resized = await resize(paths, current, hosts, spec, opts.readyTimeoutMs, log)
        return {...base, alreadyUp: true, resized, seconds: (Date.now() - started) / 1000}
      }
      // Its hosts run: a lab service that stopped (pebble killed, say) is started again, the hosts left as they are.
      const stopped = await stoppedServices(paths)
      if (stopped.length > 0) {
        log(`starting ${stopped.join(', ')} again (stopped while the hosts ran)`)
        await startServices(paths, dnsRecords(spec, current.hosts), stopped)
      }
      return {...base, alreadyUp: true, seconds: (Date.now() - started) / 1000, ...(stopped.length ? {restarted: stopped} : {})}
    }
    // A lab that was not taken down cleanly (crash, Ctrl-C, reboot of this machine) is cleared first.
    if ((current !== undefined && current.status !== 'down') || (await leftovers(paths)).length > 0) {
      log('cleaning up what an earlier lab left behind')
      await cleanup(paths, current)
    }
    const image = await ensureImage(log)
    const publicKey = await ensureKey(paths)
    await ensureSecret(paths)
    // Recorded before anything starts, so `lab down` after a Ctrl-C knows the hosts.
    const state: LabState = {status: 'starting', hosts, domain: spec.domain, aliases: spec.aliases, startedAt: new Date().toISOString()}
    await writeState(paths, state)
    await ensureInotifyInstances(hosts.length, log)
    await bootAll(paths, hosts, spec, publicKey, opts.readyTimeoutMs ?? Math.max(120_000, hosts.length * 4000), log)
    await writeState(paths, {...state, status: 'up'})
    return {...base, alreadyUp: false, seconds: (Date.now() - started) / 1000, image}
  })
}

const INOTIFY_INSTANCES = '/proc/sys/fs/inotify/max_user_instances'
/** Each guest's systemd, journald, logind and udev hold inotify instances (about 7 a host, measured). */
const INOTIFY_PER_HOST = 16

/**
 * Root's inotify instances are limited machine-wide (128 by default on Debian): the 18th guest failed to boot with
 * "Failed to create control group inotify object: Too many open files". Raised for the lab's size, never lowered.
 */
async function ensureInotifyInstances(count: number, log: (l: string) => void): Promise<void> {
  const current = Number((await readFile(INOTIFY_INSTANCES, 'utf8').catch(() => '0')).trim())
  const wanted = 128 + count * INOTIFY_PER_HOST
  if (!(current > 0) || current >= wanted) return
  await writeFile(INOTIFY_INSTANCES, `${wanted}\n`)
  log(`raised fs.inotify.max_user_instances from ${current} to ${wanted} for ${count} hosts (not kept across a reboot)`)
}

async function bootAll(paths: LabPaths, hosts: LabHost[], spec: LabSpec, publicKey: string, timeoutMs: number, log: (l: string) => void) {
  log(`booting ${hosts.length} hosts: ${hosts.map((h) => `${h.name} ${h.address}`).join(', ')}`)
  await ensureBridge()
  for (const host of hosts) {
    await addHostNetwork(host)
    await prepareHost(paths, host, hosts, publicKey)
    await bootHost(paths, host)
  }
  const deadline = Date.now() + timeoutMs
  const left = () => Math.max(1000, deadline - Date.now())
  const servicesStarted = startServices(paths, dnsRecords(spec, hosts), undefined, log)
  const ready = (async () => {
    const keys: string[][] = []
    await settleAll(hosts.map(async (h, i) => (keys[i] = await waitHostKeys(paths, h, left()))))
    await writeKnownHosts(paths, keys.flat())
    await settleAll(hosts.map((h) => waitSsh(paths, h, left())))
  })()
  await settleAll([servicesStarted, ready])
}

/**
 * A running lab given another set of hosts (a test file that needs a 4th host, `lab up --hosts N`): the hosts it no
 * longer has are stopped (their disks kept, as by `lab down`), the new ones booted; the hosts in both are not
 * touched but for their /etc/hosts, and the lab's services go on (the DNS records follow). 1-4 s here, where taking
 * the lab down and up again took 10-12 s and rebooted every host (once leaving MariaDB down: 219/CGROUP at boot).
 */
async function resize(
  paths: LabPaths,
  current: LabState,
  hosts: LabHost[],
  spec: LabSpec,
  readyTimeoutMs: number | undefined,
  log: (l: string) => void,
): Promise<{added: string[]; stopped: string[]}> {
  const has = (list: LabHost[], h: LabHost) => list.some((x) => x.name === h.name)
  const gone = current.hosts.filter((h) => !has(hosts, h))
  const added = hosts.filter((h) => !has(current.hosts, h))
  log(
    [
      added.length ? `booting ${added.map((h) => `${h.name} ${h.address}`).join(', ')}` : '',
      gone.length ? `stopping ${gone.map((h) => h.name).join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ') + ' (the other hosts untouched)',
  )
  await writeState(paths, {...current, status: 'starting', hosts: [...current.hosts, ...added]})
  await settleAll(gone.map((h) => stopHost(paths, h.name)))
  for (const h of gone) {
    await unmountUnder(paths, paths.host(h.name).dir + '/')
    await removeHostNetwork(h)
  }
  await ensureInotifyInstances(hosts.length, log)
  const publicKey = await ensureKey(paths)
  for (const host of added) {
    await addHostNetwork(host)
    await prepareHost(paths, host, hosts, publicKey)
    await bootHost(paths, host)
  }
  for (const host of hosts.filter((h) => !has(added, h))) await writeEtcHosts(paths, host, hosts)
  await setRecords(
    dnsRecords(spec, hosts),
    gone.map((h) => hostRecordName(h.name)),
  )
  const timeoutMs = readyTimeoutMs ?? Math.max(120_000, added.length * 4000)
  const deadline = Date.now() + timeoutMs
  const left = () => Math.max(1000, deadline - Date.now())
  const keys: string[][] = []
  await settleAll(hosts.map(async (h, i) => (keys[i] = await waitHostKeys(paths, h, left()))))
  await writeKnownHosts(paths, keys.flat())
  await settleAll(added.map((h) => waitSsh(paths, h, left())))
  await writeState(paths, {...current, status: 'up', hosts, domain: spec.domain, aliases: spec.aliases})
  return {added: added.map((h) => h.name), stopped: gone.map((h) => h.name)}
}

/** Processes this lab (or a crashed earlier one) started: supervisors, nspawns and the lab services. */
async function ourProcesses(paths: LabPaths): Promise<ProcessInfo[]> {
  const marks = [paths.root + '/', ...services(paths).map((s) => s.marker)]
  return (await allProcesses()).filter(({pid, argv}) => {
    const program = path.basename(argv[0] ?? '')
    const line = argv.join(' ')
    if (pid === process.pid || !marks.some((m) => line.includes(m))) return false
    if (program === 'sh') return argv.includes('foobar-lab-supervisor')
    return program === 'systemd-nspawn' || SERVICE_PROGRAMS.has(program)
  })
}

async function propagateDirs(): Promise<string[]> {
  if (!existsSync(PROPAGATE_DIR)) return []
  return (await readdir(PROPAGATE_DIR)).filter((d) => d.startsWith(NAME_PREFIX)).map((d) => path.join(PROPAGATE_DIR, d))
}

/** Everything of a lab still on this machine: empty after `lab down`. */
export async function leftovers(paths = labPaths()): Promise<string[]> {
  const [procs, mounts, netns, links, dirs] = await Promise.all([
    ourProcesses(paths),
    labMounts(paths),
    labNetns(),
    labLinks(),
    propagateDirs(),
  ])
  return [
    ...procs.map((p) => `process ${p.pid}: ${p.argv.join(' ').slice(0, 160)}`),
    ...mounts.map((m) => `mount ${m}`),
    ...netns.map((n) => `netns ${n}`),
    ...links.map((l) => `link ${l}`),
    ...dirs.map((d) => `directory ${d}`),
  ]
}

async function hostNames(paths: LabPaths, state: LabState | undefined): Promise<string[]> {
  const dirs = existsSync(paths.hostsDir) ? await readdir(paths.hostsDir) : []
  return [...new Set([...(state?.hosts.map((h) => h.name) ?? []), ...dirs])]
}

/**
 * Stop and remove everything of the lab, by PID first, then whatever a crash left (found by command line,
 * namespace, mount and link names). Each step is idempotent, so this also clears a half-started lab.
 */
async function cleanup(paths: LabPaths, state: LabState | undefined): Promise<string[]> {
  const names = await hostNames(paths, state)
  await settleAll([...names.map((n) => stopHost(paths, n)), stopServices(paths)])
  const stray = await ourProcesses(paths)
  killNow(stray.filter((p) => path.basename(p.argv[0] ?? '') === 'sh').map((p) => p.pid))
  await settleAll(
    stray
      .filter((p) => path.basename(p.argv[0] ?? '') !== 'sh')
      .map(async (p) => stopProcess(p.pid, `${p.argv[0]} (stray)`, {timeoutMs: 10_000, alsoKill: await childrenOf(p.pid)})),
  )
  // A guest whose nspawn died keeps running inside its namespace.
  for (const ns of await labNetns()) killNow(await netnsPids(ns))
  await unmountUnder(paths)
  await removeNetwork()
  for (const dir of await propagateDirs()) await rmdir(dir).catch(() => rm(dir, {recursive: true, force: true}))
  for (const name of names) {
    const h = paths.host(name)
    await rm(h.pid, {force: true})
    await rm(h.nspawnPid, {force: true})
  }
  await rm(paths.run, {recursive: true, force: true})
  return names
}

/**
 * Every lab mount under `prefix` (the whole lab by default, or one host's directory) unmounted, deepest first; again
 * while some remain, lazily after 10 rounds.
 */
async function unmountUnder(paths: LabPaths, prefix = paths.root + '/'): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const mounts = (await labMounts(paths))
      .filter((m) => m.startsWith(prefix))
      .sort()
      .reverse()
    if (mounts.length === 0) return
    for (const m of mounts) {
      const lazy = attempt >= 10 ? ['-l'] : []
      await run('umount', [...lazy, m], {what: `umount ${m}`, allowFailure: attempt < 11})
    }
    await sleep(200)
  }
}

export async function down(opts: {purge?: boolean} = {}): Promise<DownResult> {
  assertLabSupported()
  const started = Date.now()
  const paths = labPaths()
  return withLock(paths, async () => {
    const state = await readState(paths)
    const stopped = await cleanup(paths, state)
    if (opts.purge) {
      await rm(paths.root, {recursive: true, force: true})
    } else if (state) {
      await writeState(paths, {...state, status: 'down'})
    }
    const left = await leftovers(paths)
    if (left.length > 0) throw new Failure(`lab down left these behind:\n  ${left.join('\n  ')}`)
    return {stopped, purged: Boolean(opts.purge), seconds: (Date.now() - started) / 1000}
  })
}
