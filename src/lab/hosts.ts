import {existsSync} from 'node:fs'
import {chown, mkdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {Failure} from '../util/errors.js'
import {type RunResult, run, waitFor} from './exec.js'
import {ADMIN_USER} from './image.js'
import {netnsPath} from './network.js'
import {IMAGE_DIR, NAME_PREFIX, type LabPaths} from './paths.js'
import {childrenOf, livePid, startDetached, stopProcess, treePssMiB} from './process.js'
import {sshRun} from './ssh.js'
import type {LabHost} from './spec.js'

const SUPERVISOR = 'foobar-lab-supervisor'
const HOST_KEY_TYPES = ['ed25519', 'ecdsa', 'rsa'] as const

// `systemctl reboot` in a guest makes nspawn exit 133: boot it again, so a guest reboot behaves like a VM's.
// Any other exit (poweroff, SIGTERM from `lab down`) ends the loop. The current nspawn PID goes to $1.
const SUPERVISOR_SCRIPT = `pidfile=$1; shift
while :; do
  "$@" &
  echo $! > "$pidfile"
  wait $!
  rc=$?
  [ "$rc" = 133 ] || exit "$rc"
  echo "${SUPERVISOR}: guest rebooted (nspawn exit 133), booting it again"
done`

/** Overlay mounts under the lab directory (left by this lab or a crashed one). */
export async function labMounts(paths: LabPaths): Promise<string[]> {
  const mounts = await readFile('/proc/self/mounts', 'utf8')
  return mounts
    .split('\n')
    .map((l) => l.split(' ')[1]?.replace(/\\040/g, ' '))
    .filter((m): m is string => m !== undefined && m.startsWith(paths.root + '/'))
}

/** The host's disk: its own upper dir over the shared read-only image (kept across `down` unless --purge). */
async function mountOverlay(paths: LabPaths, name: string): Promise<void> {
  const h = paths.host(name)
  await Promise.all([h.upper, h.work, h.root].map((d) => mkdir(d, {recursive: true})))
  if ((await labMounts(paths)).includes(h.root)) return
  const options = `lowerdir=${IMAGE_DIR},upperdir=${h.upper},workdir=${h.work}`
  await run('mount', ['-t', 'overlay', 'overlay', '-o', options, h.root], {what: `${name}: mount overlay`})
}

function etcHosts(all: LabHost[]): string {
  const lab = all.map((h) => `${h.address}\t${h.name} ${h.name}.lab.foobar.test`).join('\n')
  return `127.0.0.1\tlocalhost
::1\t\tlocalhost ip6-localhost ip6-loopback
ff02::1\t\tip6-allnodes
ff02::2\t\tip6-allrouters

# foobar lab hosts
${lab}
`
}

async function idsOf(rootDir: string, user: string): Promise<{uid: number; gid: number}> {
  const passwd = await readFile(path.join(rootDir, 'etc/passwd'), 'utf8')
  const fields = passwd
    .split('\n')
    .find((l) => l.startsWith(`${user}:`))
    ?.split(':')
  if (!fields) throw new Failure(`lab image has no user ${user}: delete ${IMAGE_DIR} to rebuild it`)
  return {uid: Number(fields[2]), gid: Number(fields[3])}
}

async function authorize(rootDir: string, home: string, user: string, publicKey: string): Promise<void> {
  const {uid, gid} = await idsOf(rootDir, user)
  const dir = path.join(rootDir, home, '.ssh')
  await mkdir(dir, {recursive: true, mode: 0o700})
  await writeFile(path.join(dir, 'authorized_keys'), publicKey, {mode: 0o600})
  await chown(dir, uid, gid)
  await chown(path.join(dir, 'authorized_keys'), uid, gid)
}

/** A running host's /etc/hosts, rewritten for the lab's new set of hosts (written from outside, into its disk). */
export async function writeEtcHosts(paths: LabPaths, host: LabHost, all: LabHost[]): Promise<void> {
  await writeFile(path.join(paths.host(host.name).root, 'etc/hosts'), etcHosts(all))
}

/** Mount the host's overlay and give it its name, the lab's /etc/hosts and the lab key (root and deploy). */
export async function prepareHost(paths: LabPaths, host: LabHost, all: LabHost[], publicKey: string): Promise<void> {
  await mountOverlay(paths, host.name)
  const rootDir = paths.host(host.name).root
  await writeFile(path.join(rootDir, 'etc/hostname'), `${host.name}\n`)
  await writeFile(path.join(rootDir, 'etc/hosts'), etcHosts(all))
  await authorize(rootDir, 'root', 'root', publicKey)
  await authorize(rootDir, `home/${ADMIN_USER}`, ADMIN_USER, publicKey)
}

export async function bootHost(paths: LabPaths, host: LabHost): Promise<void> {
  const h = paths.host(host.name)
  const nspawn = [
    'systemd-nspawn',
    '--boot',
    '--quiet',
    // The outer machine has no systemd/dbus to register with.
    '--register=no',
    '--keep-unit',
    '--console=read-only',
    `--machine=${NAME_PREFIX}${host.name}`,
    `--hostname=${host.name}`,
    // Both: the path alone drops CAP_NET_ADMIN (no ufw/nft inside); --private-network keeps the given netns.
    `--network-namespace-path=${netnsPath(host.name)}`,
    '--private-network',
    '-D',
    h.root,
  ]
  await startDetached({file: 'sh', args: ['-c', SUPERVISOR_SCRIPT, SUPERVISOR, h.nspawnPid, ...nspawn], log: h.log, pidFile: h.pid})
}

export interface HostProcesses {
  supervisor?: number
  nspawn?: number
}

export async function hostProcesses(paths: LabPaths, name: string): Promise<HostProcesses> {
  const h = paths.host(name)
  return {supervisor: await livePid(h.pid, h.root), nspawn: await livePid(h.nspawnPid, h.root)}
}

async function logTail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '')
  // The console log is what a terminal would show: drop colour codes and blank lines.
  const lines = text
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  return lines.slice(-5).join(' | ')
}

async function assertBooting(paths: LabPaths, name: string): Promise<void> {
  if ((await hostProcesses(paths, name)).supervisor === undefined) {
    const h = paths.host(name)
    throw new Failure(`${name}: systemd-nspawn exited while booting (${h.log}): ${await logTail(h.log)}`)
  }
}

/** The host's own public host keys as known_hosts lines, once its first boot generated all of them. */
async function readHostKeys(paths: LabPaths, host: LabHost): Promise<string[] | undefined> {
  const lines: string[] = []
  for (const type of HOST_KEY_TYPES) {
    const file = path.join(paths.host(host.name).root, `etc/ssh/ssh_host_${type}_key.pub`)
    if (!existsSync(file)) return undefined
    const [kind, blob] = (await readFile(file, 'utf8')).trim().split(/\s+/)
    if (!kind || !blob) return undefined
    lines.push(`${host.address} ${kind} ${blob}`)
  }
  return lines
}

export function waitHostKeys(paths: LabPaths, host: LabHost, timeoutMs: number): Promise<string[]> {
  return waitFor(
    async () => {
      await assertBooting(paths, host.name)
      return readHostKeys(paths, host)
    },
    {timeoutMs, failure: () => `${host.name}: no SSH host keys after ${timeoutMs / 1000} s (see ${paths.host(host.name).log})`},
  )
}

/** Ready = sshd accepts the lab key as deploy, with the host key verified against the lab's known_hosts. */
export async function waitSsh(paths: LabPaths, host: LabHost, timeoutMs: number): Promise<void> {
  const started = Date.now()
  let last = ''
  let nudged = false
  await waitFor(
    async () => {
      await assertBooting(paths, host.name)
      // Seen once in CI: the guest's systemd-user-sessions failed at boot, so /run/nologin stayed and every login
      // was refused. After 20 s, restart it once (and say so) rather than fail the whole lab.
      if (!nudged && Date.now() - started > 20_000) {
        nudged = true
        const why = await restartFailedUserSessions(paths, host.name)
        if (why) process.stderr.write(`lab: ${host.name}: systemd-user-sessions had failed at boot (${why}); restarted it\n`)
      }
      // INFO: a server that closes the connection (e.g. logins refused while booting) says so only at INFO.
      const r = await sshRun(paths, host.address, 'true', {timeoutMs: 10_000, logLevel: 'INFO'})
      last = r.stderr
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .slice(-3)
        .join(' | ')
      return r.code === 0 ? true : undefined
    },
    {
      timeoutMs,
      intervalMs: 300,
      failure: async () => {
        const log = paths.host(host.name).log
        return (
          `${host.name}: sshd not ready after ${((Date.now() - started) / 1000).toFixed(1)} s: ${last || '(ssh said nothing)'}\n` +
          `  inside ${host.name}: ${await guestState(paths, host.name)}\n  console (${log}): ${await logTail(log)}`
        )
      },
    },
  )
  // Seen once on the lab: systemd-remount-fs failed in a guest (three booting at once on overlayfs), which the
  // hardening tests' "no failed unit" checks then report. Started again once, and said.
  const unit = 'systemd-remount-fs.service'
  const remount = await sshRun(
    paths,
    host.address,
    `systemctl is-failed --quiet ${unit} || exit 3; sudo -n journalctl -b -u ${unit} --no-pager -o cat -n 3 | tr '\\n' ' '; sudo -n systemctl restart ${unit}`,
    {timeoutMs: 15_000},
  )
  if (remount.code === 0)
    process.stderr.write(`lab: ${host.name}: ${unit} had failed (${remount.stdout.trim() || 'no journal'}); started it again\n`)
}

/**
 * Runs a shell script inside the guest (its PID 1's namespaces): from outside, when SSH does not answer. Undefined
 * when there is no guest process; a failure to run is an exit code like any other.
 */
async function inGuest(paths: LabPaths, name: string, script: string, what: string, timeoutMs: number): Promise<RunResult | undefined> {
  const {nspawn} = await hostProcesses(paths, name)
  const init = nspawn === undefined ? undefined : (await childrenOf(nspawn))[0]
  if (init === undefined) return undefined
  return run('nsenter', ['-t', String(init), '-m', '-u', '-i', '-n', '-p', 'sh', '-c', script], {
    what: `${name}: ${what}`,
    timeoutMs,
    allowFailure: true,
  }).catch((e: Error) => ({code: -1, stdout: '', stderr: e.message}))
}

/** Restarts the guest's systemd-user-sessions if it failed; returns what it had logged, or undefined. */
async function restartFailedUserSessions(paths: LabPaths, name: string): Promise<string | undefined> {
  const u = 'systemd-user-sessions.service'
  const script = `systemctl is-failed --quiet ${u} || exit 3; journalctl -b -u ${u} --no-pager -o cat -n 3 | tr '\\n' ' '; systemctl restart ${u}`
  const r = await inGuest(paths, name, script, 'restart systemd-user-sessions', 15_000)
  return r?.code === 0 ? r.stdout.trim() || 'no journal' : undefined
}

/** What the guest's systemd says about its boot (state, pending jobs, /run/nologin), for an error message. */
async function guestState(paths: LabPaths, name: string): Promise<string> {
  const script =
    'echo "state: $(systemctl is-system-running)"; [ -e /run/nologin ] && echo "/run/nologin present"; ' +
    'systemctl list-jobs --no-pager --no-legend | head -8; systemctl --failed --no-pager --no-legend | head -5; ' +
    // What the failed units said: the reason, not only their names.
    'for u in $(systemctl --failed --plain --no-legend | awk \'{print $1}\' | head -3); do journalctl -b -u "$u" --no-pager -o cat -n 4; done'
  const r = await inGuest(paths, name, script, 'guest state', 10_000)
  if (!r) return 'no guest process'
  return `${r.stdout}${r.stderr}`.trim().split('\n').join(' | ') || 'nothing'
}

/** Stop the supervisor first (so it cannot boot the guest again), then nspawn: SIGTERM halts the guest cleanly. */
export async function stopHost(paths: LabPaths, name: string): Promise<void> {
  const {supervisor, nspawn} = await hostProcesses(paths, name)
  if (supervisor !== undefined) await stopProcess(supervisor, `${name}: supervisor`, {timeoutMs: 2000})
  const current = (await hostProcesses(paths, name)).nspawn ?? nspawn
  if (current !== undefined) {
    // If nspawn must be killed, its child (the guest's PID 1) goes too, or the guest outlives it.
    await stopProcess(current, `${name}: systemd-nspawn`, {timeoutMs: 45_000, alsoKill: await childrenOf(current)})
  }
}

export async function hostMemoryMiB(paths: LabPaths, name: string): Promise<number | undefined> {
  const {nspawn} = await hostProcesses(paths, name)
  return nspawn === undefined ? undefined : treePssMiB(nspawn)
}
