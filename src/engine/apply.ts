import {randomBytes} from 'node:crypto'
import {dirname} from 'node:path'
import {Failure, RemoteError, shownCommand} from '../util/errors.js'
import {type RunResult, type Runner, TIMED_OUT} from '../remote/runner.js'
import {SIGNALS_EXIT, ensureDir, shq} from '../util/shell.js'
import {sleep} from '../util/wait.js'
import {
  type Change,
  type DesiredFile,
  type HostApply,
  type HostPlan,
  type InstallGuard,
  type LiveAction,
  PENDING_REASON,
} from './contract.js'
import {oneDaemonReload} from './daemon-reload.js'
import type {HostDesired} from './desired.js'
import {LAST_APPLY, PENDING_FILE} from './facts.js'

export const BACKUP_DIR = '/var/lib/foobar/backup'

/** Package work through a slow mirror takes minutes (its postinst scripts too: AIDE's database, say). */
const APT_TIMEOUT_MS = 60 * 60_000
/** apt-get update: index files only, so a few minutes at most on any mirror; a hung fetch is tried again. */
const APT_UPDATE_LIMIT_S = 300
/** A mirror (or the proxy before it) that sends nothing for this long fails the fetch, and the update is tried again. */
const APT_STALL_S = 30
/**
 * How long package work waits for apt's or dpkg's lock while another process holds it: apt-daily's index update
 * (seconds to minutes), unattended-upgrades (minutes), an operator's apt-get.
 */
const APT_LOCK_WAIT_S = 15 * 60
const APT_LOCK_POLL_MS = 2000

export type Step = (title: string) => void

/** A temp name of its own per write (same directory, so the rename is atomic): two runs never share one. */
const tempPrefix = (path: string) => `${dirname(path)}/.${path.split('/').pop()}.foobar-`
const TEMP_RANDOM_BYTES = 6
const tempOf = (path: string) => `${tempPrefix(path)}${randomBytes(TEMP_RANDOM_BYTES).toString('hex')}`
const backupOf = (path: string) => `${BACKUP_DIR}${path}`

/**
 * What follows each file's content in a batch's input (checked by writeFileScript: one process less a file than
 * counting the bytes written, issue 20). A content that holds this line is still read by its length.
 */
const END_LINE = '@@foobar-end-of-content'

/** `rm -f` only when there is something to remove (a dangling symlink included). */
const removeIfThere = (path: string) => `if [ -e ${shq(path)} ] || [ -L ${shq(path)} ]; then rm -f ${shq(path)}; fi`

/**
 * Writes one file atomically: temp file with the final mode and owner -> the daemon's checker on the candidate ->
 * backup of the previous file -> rename. A `config`-mode checker (nginx -t) runs with the file in place and the
 * previous file is put back if it fails. A dropped connection leaves at most a stray temp file, never a torn one.
 */
export function writeFileScript(f: DesiredFile, tmpPath = tempOf(f.path), bytes?: number): string {
  const p = shq(f.path)
  const tmp = shq(tmpPath)
  const bak = shq(backupOf(f.path))
  const lines = [
    'set -e',
    // New directories are world-readable (daemons running as other users read them); the temp file is not. Every
    // process counts here (a first provision writes ~45 files a host, each process ~5-9 ms of a lab host's CPU,
    // issue 20): the shell's own tests skip a mkdir, chown or rm that has nothing to do.
    `umask 022; ${ensureDir(dirname(f.path))}; umask 077; ${ensureDir(dirname(backupOf(f.path)))}`,
    // A failure from here on leaves no temp file behind, a dropped connection's signals included: dash runs no EXIT
    // trap when a signal ends it, and the first write to the closed pipes (the "cut short" message) raises SIGPIPE.
    // (A test first: after the rename there is nothing to remove, and rm would be one more process a file.)
    `trap 'if [ -e ${tmp} ]; then rm -f ${tmp}; fi' EXIT`,
    ...SIGNALS_EXIT,
    // A temp file an earlier write left (its shell SIGKILLed, the host down mid-write) goes now: the host lock keeps
    // any other foobar from writing here.
    `for fb_t in ${shq(tempPrefix(f.path))}${'?'.repeat(2 * TEMP_RANDOM_BYTES)}; do if [ -f "$fb_t" ] && [ "$fb_t" != ${tmp} ]; then rm -f -- "$fb_t"; fi; done`,
    // In a batch the contents come one after the other: exactly this file's bytes (GNU head reads no more), and all
    // of them (a connection that dropped mid-content must not leave a short file to move in place): each content is
    // followed by END_LINE, which the shell's own `read` (a byte at a time from a pipe) finds only after all of it.
    ...(bytes === undefined
      ? [`cat > ${tmp}`]
      : [
          `head -c ${bytes} > ${tmp}`,
          `IFS= read -r fb_end || fb_end=`,
          `if [ "$fb_end" != ${shq(END_LINE)} ]; then echo "${f.path}: content cut short (previous file kept)" >&2; exit 4; fi`,
        ]),
    // Made by root, the temp file is root's and root's group's already, unless its directory is setgid (its group).
    f.owner === 'root' && f.group === 'root'
      ? `if [ -g ${shq(dirname(f.path))} ]; then chown root:root ${tmp}; fi`
      : `chown ${shq(`${f.owner}:${f.group}`)} ${tmp}`,
    `chmod ${f.mode.toString(8)} ${tmp}`,
  ]
  if (f.validate?.mode === 'candidate') {
    // The checker's output is kept in a variable, not a fixed-name file in /tmp (a local user could plant a symlink there).
    lines.push(
      `if ! out=$(${f.validate.command.replaceAll('{}', tmp)} 2>&1); then printf '%s\\n' "$out" >&2; echo "validation failed: ${f.path} (previous file kept)" >&2; exit 3; fi`,
    )
  }
  // `.absent` records that there was no previous file, so a rollback later in the run removes the new one.
  lines.push(
    `if [ -f ${p} ]; then cp -p ${p} ${bak}; ${removeIfThere(`${backupOf(f.path)}.absent`)}; else ${removeIfThere(backupOf(f.path))}; : > ${bak}.absent; fi`,
  )
  // -T: a directory where the file belongs is an error, not a place to move the file into.
  lines.push(`mv -fT ${tmp} ${p}`)
  if (f.validate?.mode === 'config') {
    lines.push(
      `if ! out=$(${f.validate.command} 2>&1); then printf '%s\\n' "$out" >&2; ` +
        `if [ -f ${bak}.absent ]; then rm -f ${p}; else cp -p ${bak} ${p}; fi; echo "validation failed: ${f.path} (previous file restored)" >&2; exit 3; fi`,
    )
  }
  return lines.join('\n')
}

/** Printed after each file of a batch is in place. */
const WROTE = 'foobar-wrote '
/** Files per batch: one round trip each, however many files a change has (a first provision writes ~40 a host). */
const WRITE_BATCH = 64
/**
 * The largest batch script: it is one argument of the remote shell's command line, which Linux caps at 128 KiB
 * (MAX_ARG_STRLEN: a longer one fails with "Argument list too long"). A file's part is 1.5-3 KB (its paths appear
 * a dozen times), so 64 files in a deep directory would not fit.
 */
export const WRITE_BATCH_BYTES = 96 * 1024

/**
 * The files in batches of at most WRITE_BATCH files and WRITE_BATCH_BYTES of script, in order (a file whose own
 * script is longer goes alone).
 */
export function writeBatches<T extends {file: DesiredFile}>(cs: T[]): T[][] {
  const batches: T[][] = []
  let size = 0
  for (const c of cs) {
    // Temp names are random but of one length: this is the length the batch's script will have for the file.
    const script = writeFileScript(c.file, tempOf(c.file.path), Buffer.byteLength(c.file.content))
    const bytes = Buffer.byteLength(script) + Buffer.byteLength(WROTE + c.file.path) + 16
    const last = batches.at(-1)
    if (last && last.length < WRITE_BATCH && size + bytes <= WRITE_BATCH_BYTES) {
      last.push(c)
      size += bytes
    } else {
      batches.push([c])
      size = bytes
    }
  }
  return batches
}

/**
 * Writes several files in one round trip, one after the other, each exactly as writeFileScript writes one (atomic,
 * validated, backed up); their contents come on stdin one after the other (`batchInput`). The first failure stops the
 * batch with that file's exit status; the files before it are in place, and each one in place is printed (`WROTE`)
 * so a rollback knows them.
 */
export function writeFilesScript(files: DesiredFile[], tmpPaths = files.map((f) => tempOf(f.path))): string {
  // The first line is a single write's: the same script shape (and the fake host reads its stdin as content).
  const lines = ['set -e', `umask 022; : ${files.length} files, their contents one after the other on stdin`]
  files.forEach((f, i) => {
    lines.push('(', writeFileScript(f, tmpPaths[i], Buffer.byteLength(f.content)), ')', `echo ${shq(WROTE + f.path)}`)
  })
  return lines.join('\n')
}

export const batchInput = (files: DesiredFile[]) => files.map((f) => `${f.content}${END_LINE}\n`).join('')

/** How many files of a batch are in place, from its output. */
export const wroteCount = (stdout: string) => stdout.split('\n').filter((l) => l.startsWith(WROTE)).length

/**
 * A checker that reads the whole config (nginx -t) may reject another file than the one written (a broken file
 * someone else left in conf.d): say which, so nobody hunts in the wrong file.
 */
export function rejectedElsewhere(checkerOutput: string, written: string): string {
  const named = /(?:\bin |^)(\/[^\s:"']+):(\d+)/m.exec(checkerOutput)
  return named && named[1] !== written ? ` (the checker rejected ${named[1]}:${named[2]}, not ${written})` : ''
}

export function restoreScript(paths: string[]): string {
  return paths
    .map((path) => {
      const p = shq(path)
      const bak = shq(backupOf(path))
      return `if [ -f ${bak}.absent ]; then rm -f ${p}; elif [ -f ${bak} ]; then cp -p ${bak} ${p}; fi`
    })
    .join('\n')
}

/** Adds names to the host's pending set (one line each, no duplicates). */
export function addPendingScript(names: string[]): string {
  const f = shq(PENDING_FILE)
  return `mkdir -p ${shq(dirname(PENDING_FILE))} && { cat ${f} 2>/dev/null; printf '%s\\n' ${names.map(shq).join(' ')}; } | sort -u > ${f}.new && mv -f ${f}.new ${f}`
}

/**
 * Records that foobar is changing (or has just changed) the host, by the host's clock (see LAST_APPLY). Written in
 * place, not renamed: a unit watching it (PathChanged=) sees the write.
 */
export const markAppliedScript = () => `mkdir -p ${shq(dirname(LAST_APPLY))} && date +%s > ${shq(LAST_APPLY)}`

/** Keeps only these names in the pending set (none: removes it). */
function keepPendingScript(names: string[]): string {
  const f = shq(PENDING_FILE)
  return names.length ? `printf '%s\\n' ${names.map(shq).join(' ')} > ${f}.new && mv -f ${f}.new ${f}` : `rm -f ${f}`
}

export interface HealthTiming {
  /** Wait before the first probe after a reload: a reload is asynchronous. None after a start or restart. */
  settleMs: number
  everyMs: number
  timeoutMs: number
}

/**
 * The probes poll fast. The settle is kept for reloads only: nginx, HAProxy and sshd reload on a signal that
 * `systemctl reload` sends and does not wait for, so right after it the old workers would still answer (and pass)
 * for the new config. A start or restart is over when systemctl returns (the unit is up, or it is starting and the
 * probes wait for it).
 */
export const HEALTH_TIMING: HealthTiming = {settleMs: 1000, everyMs: 250, timeoutMs: 30_000}

/**
 * Healthy = active and passing its health check twice in a row, a probe interval apart (a daemon that comes up and
 * falls over at once does not pass), after a short settle when it was reloaded (see HEALTH_TIMING).
 */
/**
 * systemd's own lines that say nothing about why a service failed (a container that cannot kill a cgroup says it
 * twice per stop): dropped, so that the daemon's error lines fit in the tail.
 */
const JOURNAL_NOISE = /^\S+: Failed to kill control group .*, ignoring: /

/** The unit's last journal lines, to say why it is not running (empty when the journal has nothing to say). */
async function journalTail(runner: Runner, name: string, lines = 8): Promise<string> {
  const j = await runner.run(`journalctl -u ${shq(name)} -n ${lines * 4} --no-pager -o cat 2>/dev/null`, {check: false})
  const kept = j.stdout
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '' && !JOURNAL_NOISE.test(l) && !/^-- No entries --$/.test(l))
    .slice(-lines)
  return kept.length ? `; its journal ends:\n    ${kept.join('\n    ')}` : ''
}

export const PROBE_LINE = '@@probe '

/**
 * One health probe in one round trip: the unit's state (a line of its own), then, only when it is active, its health
 * check, in a subshell: the script's exit status is the check's. Two round trips a probe before (issue 20).
 */
export function probeScript(name: string, health: string | undefined): string {
  const state = `fb_state=$(systemctl is-active ${shq(name)}); echo "${PROBE_LINE}$fb_state"`
  return health ? `${state}\n[ "$fb_state" = active ] || exit 0\n(\n${health}\n)` : state
}

/** The value on the line `marker` starts (probeScript's), and what the script printed after it. */
function markedLine(stdout: string, marker: string): {value: string; after: string} | undefined {
  const at = stdout.indexOf(marker)
  if (at < 0) return undefined
  const end = stdout.indexOf('\n', at)
  return {value: stdout.slice(at + marker.length, end < 0 ? undefined : end).trim(), after: end < 0 ? '' : stdout.slice(end + 1)}
}

/** What probeScript printed: the unit's state, and the health check's result (undefined when it did not run). */
export function readProbe(r: RunResult): {state: string; check?: RunResult} | undefined {
  const line = markedLine(r.stdout, PROBE_LINE)
  if (!line) return undefined
  if (line.value !== 'active') return {state: line.value}
  return {state: line.value, check: {code: r.code, stdout: line.after, stderr: r.stderr}}
}

const WAS_OF = '@@was-of '

/**
 * Changed services brought up in one round trip, one after the other in the order given (issue 20: a first converge
 * started a web server's nine services a round trip and two probes each): each enabled when the plan says so (a
 * failure there ends the script first, with enable's status and words; without the full systemd reload enable does
 * by default, ~0.5 s of a busy host's CPU each: the unit's own file is loaded when it starts, and its `[Install]`
 * links matter only at boot, when everything is read anew), its state before on a line of its own, then, when it was
 * not active, started (its failed state reset first: a unit that hit its start limit refuses a plain start). An
 * active service is left as it is: its reload or restart, when its config changed, is a step of its own. The health
 * probes follow (waitHealthyAll), at once after a start: a start is over when systemctl returns.
 */
export function bringUpAllScript(services: Array<{name: string; enable: boolean}>): string {
  return services
    .flatMap(({name, enable}) => {
      const n = shq(name)
      return [
        ...(enable ? [`systemctl enable --no-reload ${n} >/dev/null 2>&1 || systemctl enable --no-reload ${n} || exit`] : []),
        `fb_was=$(systemctl is-active ${n}); echo "${WAS_OF}${name} $fb_was"`,
        `if [ "$fb_was" != active ]; then systemctl reset-failed ${n} 2>/dev/null; systemctl start ${n}; fi`,
      ]
    })
    .concat('exit 0')
    .join('\n')
}

/** What bringUpAllScript said of each service: whether it was active (absent: the script ended before it). */
export function readBringUpAll(r: RunResult): Map<string, {wasActive: boolean}> {
  const out = new Map<string, {wasActive: boolean}>()
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith(WAS_OF)) continue
    const [name, state] = line.slice(WAS_OF.length).trim().split(' ')
    if (name) out.set(name, {wasActive: state === 'active'})
  }
  return out
}

export const PROBE_OF = '@@probe-of '
export const PROBE_RC = '@@probe-rc '

/**
 * One probe of each service in one round trip (probeScript's, each in a subshell with its output and errors
 * together), all at once (they only read: a probe round takes its slowest probe's time, not their sum; fail2ban's
 * client alone is a Python start), each service's part printed between its own marker lines, in the order given.
 * Without a temp directory, or for one service, they run one after the other.
 */
export function probeAllScript(services: Array<{name: string; health?: string}>): string {
  const probe = ({name, health}: {name: string; health?: string}) => `(\n${probeScript(name, health)}\n) 2>&1`
  const inTurn = services.map((s) => `echo '${PROBE_OF}${s.name}'\n${probe(s)}\necho "${PROBE_RC}$?"`)
  // One alone needs no temp directory.
  if (services.length === 1) return inTurn[0]!
  return [
    'fb_pd=$(mktemp -d 2>/dev/null) || fb_pd=',
    'if [ -n "$fb_pd" ]; then',
    ...services.map((s, i) => `{ ${probe(s)}\necho "${PROBE_RC}$?"; } > "$fb_pd/${i}" &`),
    'wait',
    ...services.map((s, i) => `echo '${PROBE_OF}${s.name}'; cat "$fb_pd/${i}"`),
    'rm -rf "$fb_pd"',
    'else',
    ...inTurn,
    'fi',
  ].join('\n')
}

/** What probeAllScript printed, per service (readProbe's answer; absent when its part is missing). */
export function readProbeAll(r: RunResult): Map<string, {state: string; check?: RunResult}> {
  const out = new Map<string, {state: string; check?: RunResult}>()
  for (const part of r.stdout.split(PROBE_OF).slice(1)) {
    const nl = part.indexOf('\n')
    const name = part.slice(0, nl < 0 ? undefined : nl).trim()
    const body = nl < 0 ? '' : part.slice(nl + 1)
    const rcAt = body.lastIndexOf(PROBE_RC)
    if (!name || rcAt < 0) continue
    const code = Number(body.slice(rcAt + PROBE_RC.length).split('\n')[0])
    const probe = readProbe({code, stdout: body.slice(0, rcAt), stderr: ''})
    if (probe) out.set(name, probe)
  }
  return out
}

/**
 * The health gate of services brought up or reloaded together: probe rounds (one round trip each, for all of them that
 * have not yet passed twice in a row) until each has passed twice in a row, or the deadline. The first of them (in
 * order) still failing at the deadline, and why: its state, or its health check's last words; its journal's last
 * lines when it is not active. One that has passed every probe so far (not yet twice) is not held against it.
 */
async function waitHealthyAll(
  runner: Runner,
  services: Array<{name: string; health?: string}>,
  t: HealthTiming,
): Promise<{name: string; problem: string} | undefined> {
  const deadline = Date.now() + t.timeoutMs
  const passes = new Map(services.map((s) => [s.name, 0]))
  const last = new Map<string, string>()
  for (;;) {
    const pending = services.filter((s) => passes.get(s.name)! < 2)
    const probes = readProbeAll(await runner.run(probeAllScript(pending), {check: false}))
    for (const s of pending) {
      const probe = probes.get(s.name) ?? {state: ''}
      if (probe.state === 'active') {
        const h = probe.check ?? {code: 0, stdout: '', stderr: ''}
        if (h.code === 0) passes.set(s.name, passes.get(s.name)! + 1)
        else {
          passes.set(s.name, 0)
          last.set(s.name, `health check failed: ${(h.stderr || h.stdout).trim().split('\n').pop()}`)
        }
      } else {
        passes.set(s.name, 0)
        last.set(s.name, `${s.name} is ${probe.state || 'not active'}`)
      }
    }
    const failing = services.filter((s) => passes.get(s.name)! < 2)
    if (failing.length === 0) return undefined
    if (Date.now() > deadline) {
      const s = failing.find((f) => last.has(f.name))
      if (!s) return undefined
      const active = probes.get(s.name)?.state === 'active'
      return {name: s.name, problem: active ? last.get(s.name)! : `${last.get(s.name)}${await journalTail(runner, s.name)}`}
    }
    await sleep(t.everyMs)
  }
}

/** Which lock a failed apt or dpkg command could not get, and who holds it (as apt names it), from its output. */
export function aptLockHeld(output: string): {lock: string; holder: string} | undefined {
  // apt 2.x: "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 65032 (apt-get)"
  const apt = /Could not get lock (\/\S+?)\.?(?:\s+It is held by process (\d+)(?: \(([^)\n]*)\))?)?(?:\s|$)/.exec(output)
  if (apt) return {lock: apt[1]!, holder: apt[2] ? `process ${apt[2]}${apt[3] ? ` (${apt[3]})` : ''}` : 'another process'}
  // dpkg 1.21: "dpkg: error: dpkg frontend lock was locked by another process with pid 1570"
  const dpkg = /dpkg: error: dpkg (frontend lock|status database|lock)\b.*?(?:is|was) locked by another process(?: with pid (\d+))?/.exec(
    output,
  )
  if (dpkg)
    return {
      lock: dpkg[1] === 'status database' ? '/var/lib/dpkg/lock' : '/var/lib/dpkg/lock-frontend',
      holder: dpkg[2] ? `process ${dpkg[2]}` : 'another process',
    }
  return undefined
}

/**
 * Runs an apt or dpkg command, and again while it fails only because another process holds apt's or dpkg's lock
 * (apt-daily, unattended-upgrades, an operator's apt-get): apt's own DPkg::Lock::Timeout does not cover the index
 * lock, and dpkg has none. Says who holds it while it waits; after `waitS` fails the host naming the lock and holder.
 * A lock failure changes nothing, so the command is safe to run again.
 */
export async function whileAptLocked(
  run: () => Promise<RunResult>,
  o: {host: string; step: Step; waitS?: number; everyMs?: number},
): Promise<RunResult> {
  const waitS = o.waitS ?? APT_LOCK_WAIT_S
  const started = Date.now()
  for (;;) {
    const res = await run()
    if (res.code === 0) return res
    const held = aptLockHeld(`${res.stdout}\n${res.stderr}`)
    if (!held) return res
    const elapsedMs = Date.now() - started
    const waited = Math.round(elapsedMs / 1000)
    if (elapsedMs >= waitS * 1000) {
      throw new Failure(
        `${o.host}: ${held.lock} still held by ${held.holder} after ${waited} s of waiting (apt-daily or unattended-upgrades?): no package was changed; run again when it has finished`,
      )
    }
    o.step(`waiting for ${held.lock}: held by ${held.holder}${waited ? ` (${waited} s)` : ''}`)
    await sleep(o.everyMs ?? APT_LOCK_POLL_MS)
  }
}

export interface ApplyOptions {
  step?: Step
  /** Plans again after packages are installed (they bring files and services of their own). */
  replan?: () => Promise<HostPlan>
  /** Opens a fresh connection and runs a command: confirms a guarded step. */
  freshConnection?: () => Promise<void>
  health?: HealthTiming
}

/**
 * Pure: `command` (the package transaction) run with the install guards in place. Each is written only where no
 * file is, and removed when the shell ends, however it ends (the transaction's failure, or a connection that drops:
 * sshd hangs the shell up). The transaction's exit status is the script's.
 */
export function guardedInstall(guards: InstallGuard[], command: string): string {
  if (!guards.length) return command
  const lines = ['fb_made=']
  lines.push('fb_clean() { for fb_f in $fb_made; do rm -f "$fb_f"; done; }')
  lines.push("trap 'fb_clean' EXIT", ...SIGNALS_EXIT)
  for (const g of guards) {
    if (!/^\/[A-Za-z0-9._/-]+$/.test(g.path)) throw new Error(`install guard path not allowed: ${g.path}`)
    const p = shq(g.path)
    const chmod = g.mode !== undefined ? ` && chmod ${g.mode.toString(8)} ${p}` : ''
    lines.push(`if [ ! -e ${p} ] && [ ! -L ${p} ]; then fb_made="$fb_made ${g.path}"; printf '%s' ${shq(g.content)} > ${p}${chmod}; fi`)
  }
  lines.push(command)
  return lines.join('\n')
}

/** apt-get install's arguments: a pinned package as `name=version` (versions are validated by the inventory). */
export function installArgs(c: {install: string[]; versions?: Array<{name: string; from?: string; to: string}>}): string[] {
  const to = new Map((c.versions ?? []).map((v) => [v.name, v.to]))
  return c.install.map((p) => (to.has(p) ? `${p}=${to.get(p)}` : p))
}

type Of<K extends Change['kind']> = Extract<Change, {kind: K}>
const only = <K extends Change['kind']>(changes: Change[], kind: K) => changes.filter((c): c is Of<K> => c.kind === kind)

/**
 * Applies a host's plan: packages, files (atomic, validated), services (started or reloaded in component order,
 * each health-gated, the previous files restored on failure), the components' live steps, and last the guarded
 * steps that could cut off access. Throws Failure naming the host and what failed; the host is left as it was or
 * converged.
 */
export async function applyHost(runner: Runner, desired: HostDesired, initialPlan: HostPlan, o: ApplyOptions = {}): Promise<Applied> {
  // Before the first change, and again at the end whatever happened: a run cut short still says the host changed.
  await runner.run(markAppliedScript())
  try {
    return await applyChanges(runner, desired, initialPlan, o)
  } finally {
    await runner.run(markAppliedScript(), {check: false}).catch(() => undefined)
  }
}

/** What a successful apply wrote (each previous file kept in BACKUP_DIR) and which services it started or reloaded. */
export interface Applied {
  written: string[]
  services: string[]
}

/**
 * Puts back the files an apply wrote (from the backups that apply made) and reloads or restarts the services it had
 * touched, each health-gated: the host serves its previous configuration again (a canary judged worse). Packages
 * installed and live steps (firewall, database accounts) stay. Throws when a service is not healthy afterwards.
 */
export async function revertApplied(runner: Runner, desired: HostDesired, applied: Applied, o: Pick<ApplyOptions, 'step' | 'health'> = {}) {
  const step = o.step ?? (() => {})
  const timing = o.health ?? HEALTH_TIMING
  await runner.run(markAppliedScript())
  try {
    step(`putting back the previous ${applied.written.join(', ')}`)
    await runner.run(restoreScript(applied.written))
    if (applied.written.some((p) => p.startsWith('/etc/systemd/'))) await runner.run('systemctl daemon-reload')
    for (const spec of desired.services.filter((s) => applied.services.includes(s.name))) {
      const active = (await runner.run(`systemctl is-active ${shq(spec.name)}`, {check: false})).stdout.trim() === 'active'
      const how = active && spec.onChange === 'reload' ? 'reload' : 'restart'
      step(`${how}ing ${spec.name} on the previous configuration`)
      await runner.run(`systemctl ${how} ${shq(spec.name)}`, {check: false})
      if (how === 'reload') await sleep(timing.settleMs)
      const bad = await waitHealthyAll(runner, [spec], timing)
      if (bad) throw new Failure(`${desired.host.name}: ${spec.name} unhealthy on the previous configuration (${bad.problem})`)
    }
  } finally {
    await runner.run(markAppliedScript(), {check: false}).catch(() => undefined)
  }
}

async function applyChanges(runner: Runner, desired: HostDesired, initialPlan: HostPlan, o: ApplyOptions): Promise<Applied> {
  const host = desired.host
  const step = o.step ?? (() => {})
  const timing = o.health ?? HEALTH_TIMING
  let plan = initialPlan
  let reloads = only(plan.changes, 'reload')
  const pendingOf = (changes: Change[]) => only(changes, 'live').flatMap((c) => (c.action.pending ? [c.action.pending] : []))
  // Recorded before anything changes, so that a run cut short still reloads next time (the lost-handler problem).
  const recorded = [...reloads.map((r) => r.name), ...pendingOf(plan.changes)]
  let touchedPending = recorded.length > 0
  /** What an earlier, interrupted run left owed: still owed if this run rolls back. */
  const earlier = [
    ...reloads.filter((r) => r.reason === PENDING_REASON).map((r) => r.name),
    ...only(plan.changes, 'live').flatMap((c) => (c.action.pending && c.action.summary.includes(PENDING_REASON) ? [c.action.pending] : [])),
  ]
  if (recorded.length) await runner.run(addPendingScript(recorded))

  const written: string[] = []
  /** Files written in one round trip per batch (writeBatches; one file: the plain single write). */
  const writeAll = async (cs: Array<Of<'file'>>) => {
    for (const batch of writeBatches(cs)) {
      step(`writing ${batch.map((c) => c.path).join(', ')}`)
      const one = batch.length === 1
      const files = batch.map((c) => c.file)
      const res = one
        ? await runner.run(writeFileScript(files[0]!), {stdin: files[0]!.content, check: false})
        : await runner.run(writeFilesScript(files), {stdin: batchInput(files), check: false})
      const done = res.code === 0 ? batch.length : one ? 0 : wroteCount(res.stdout)
      written.push(...batch.slice(0, done).map((c) => c.path))
      if (res.code !== 0) {
        if (written.length) await runner.run(restoreScript(written), {check: false})
        // Nothing was reloaded: the host is as it was, so this run's reloads are not owed any more.
        if (touchedPending) await runner.run(keepPendingScript(earlier))
        const failed = batch[done]?.path ?? batch[0]!.path
        throw new Failure(`${host.name}: ${res.stderr.trim().split('\n').slice(-6).join('\n  ')}${rejectedElsewhere(res.stderr, failed)}`)
      }
    }
  }
  const pkgs = plan.changes.find((c): c is Of<'packages'> => c.kind === 'packages')
  /** Written before the packages (a drop-in their maintainer scripts must find), so not again after them. */
  const early = new Set<string>()
  if (pkgs) {
    const first = plan.changes.filter((c): c is Of<'file'> => c.kind === 'file' && c.action !== 'attributes' && !!c.file.beforePackages)
    await writeAll(first)
    for (const c of first) early.add(c.path)
    if ([...early].some((p) => p.startsWith('/etc/systemd/'))) await runner.run('systemctl daemon-reload')
    step(`installing ${pkgs.install.join(' ')}`)
    try {
      // Through a proxy without HTTP pipelining: a proxy that closed a pipelined connection left apt-get update waiting
      // forever (seen with the lab's apt-cacher-ng: the socket in CLOSE_WAIT, apt polling on).
      const proxy = host.apt.proxy ? ` -o Acquire::http::Proxy=${shq(host.apt.proxy)} -o Acquire::http::Pipeline-Depth=0` : ''
      // The index update is bounded on the host itself (killed there, its lock freed) and tried a second time. A
      // fetch that receives nothing for APT_STALL_S fails (apt's own default waits 120 s): a stalled mirror once held
      // the lab's update for 280 s, and the second attempt then took a second.
      const updateOnce = () =>
        whileAptLocked(
          () =>
            runner.run(
              `timeout -k 10 ${APT_UPDATE_LIMIT_S} env DEBIAN_FRONTEND=noninteractive apt-get${proxy} -o Acquire::http::Timeout=${APT_STALL_S} -q update 2>&1`,
              {check: false, timeoutMs: (APT_UPDATE_LIMIT_S + 30) * 1000},
            ),
          {host: host.name, step},
        )
      // Offline apt-get update exits 0 with only warnings: check for them.
      const updateFailed = (u: RunResult) => u.code !== 0 || /^(W: Failed to fetch|E: )/m.test(u.stdout)
      let update = await updateOnce()
      if (updateFailed(update)) {
        step(
          update.code === TIMED_OUT
            ? `apt-get update did not finish in ${APT_UPDATE_LIMIT_S} s: trying again`
            : 'apt-get update failed: trying again',
        )
        update = await updateOnce()
      }
      if (updateFailed(update)) {
        throw new Failure(
          `${host.name}: apt-get update failed: ${update.stdout
            .split('\n')
            .filter((l) => /^(W|E):/.test(l))
            .slice(0, 3)
            .join(' | ')}`,
        )
      }
      const install = await whileAptLocked(
        () =>
          runner.run(
            guardedInstall(
              pkgs.guards ?? [],
              // A run cut off mid-install leaves dpkg interrupted: finish that first (a no-op otherwise).
              oneDaemonReload(
                (dpkgPath) =>
                  `DEBIAN_FRONTEND=noninteractive dpkg --force-confdef --force-confold --configure -a && DEBIAN_FRONTEND=noninteractive apt-get${proxy} -o DPkg::Path=${dpkgPath} -q -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-unsafe-io${pkgs.versions?.length ? ' --allow-downgrades' : ''} install ${installArgs(pkgs).map(shq).join(' ')}`,
              ),
            ),
            {timeoutMs: APT_TIMEOUT_MS, check: false},
          ),
        {host: host.name, step},
      )
      if (install.code !== 0) {
        throw new RemoteError(
          host.name,
          shownCommand(`apt-get install ${installArgs(pkgs).join(' ')}`),
          install.code,
          install.stderr || install.stdout,
        )
      }
    } catch (error) {
      // The files written for the packages are taken back with them: a failed install leaves the host's files as they were.
      if (written.length) {
        await runner.run(restoreScript(written), {check: false})
        if (written.some((p) => p.startsWith('/etc/systemd/'))) await runner.run('systemctl daemon-reload', {check: false})
      }
      throw error
    }
    // Packages bring files and services of their own (nginx's default site): plan the rest against what is now there.
    if (o.replan) {
      const next = await o.replan()
      const more = only(next.changes, 'reload').filter((c) => !reloads.some((r) => r.name === c.name))
      const morePending = pendingOf(next.changes).filter((p) => !recorded.includes(p))
      if (more.length || morePending.length) {
        await runner.run(addPendingScript([...more.map((r) => r.name), ...morePending]))
        touchedPending = true
      }
      reloads = [...reloads, ...more]
      plan = {host: plan.host, changes: [...next.changes.filter((c) => c.kind !== 'reload' && c.kind !== 'packages'), ...reloads]}
    }
  }

  /** Consecutive writes, done in one round trip when the next change is not a write (or at the end). */
  let writes: Array<Of<'file'>> = []
  const flush = async () => {
    await writeAll(writes)
    writes = []
  }
  for (const c of plan.changes) {
    if (c.kind === 'file' && c.action !== 'attributes') {
      if (!early.has(c.path)) writes.push(c)
      continue
    }
    if (c.kind === 'file' || c.kind === 'remove') await flush()
    if (c.kind === 'file') {
      // Only an attribute fix gets here: writes are batched above.
      step(`fixing ${c.path}`)
      await runner.run(`chown ${shq(`${c.file.owner}:${c.file.group}`)} ${shq(c.path)} && chmod ${c.file.mode.toString(8)} ${shq(c.path)}`)
    } else if (c.kind === 'remove') {
      step(`removing ${c.path}`)
      await runner.run(
        `mkdir -p ${shq(dirname(backupOf(c.path)))} && cp -P ${shq(c.path)} ${shq(backupOf(c.path))} && rm -f ${shq(`${backupOf(c.path)}.absent`)} ${shq(c.path)}`,
      )
      written.push(c.path)
    }
  }
  await flush()
  if (written.some((p) => p.startsWith('/etc/systemd/'))) await runner.run('systemctl daemon-reload')

  const services = only(plan.changes, 'service')
  /** Services started or reloaded in this run, in order: a rollback reloads them on the restored files. */
  const touched: Array<{spec: (typeof desired.services)[number]; wasActive: boolean}> = []
  /** A service unhealthy after the change: the previous config back, every service touched on it again. */
  const unhealthy = async (name: string, problem: string): Promise<never> => {
    // Put the previous config back and reload again every service this run touched, so each runs on the
    // restored files (not only the one that failed); their reloads are then no longer owed.
    if (written.length) {
      step(`rolling back ${name}`)
      await runner.run(restoreScript(written), {check: false})
      if (written.some((p) => p.startsWith('/etc/systemd/'))) await runner.run('systemctl daemon-reload', {check: false})
      for (const t of touched) {
        await runner.run(`systemctl ${t.spec.onChange === 'reload' && t.wasActive ? 'reload' : 'restart'} ${shq(t.spec.name)}`, {
          check: false,
        })
      }
      if (touchedPending) await runner.run(keepPendingScript(earlier))
    }
    throw new Failure(`${host.name}: ${name} unhealthy after the change (${problem}); previous config restored`)
  }
  // In component order: the app is up before nginx's health check asks it. Services that were not running (all of
  // a first converge's) start one after the other in one round trip and are gated together: none of them served
  // anything before. (Their reloads for changed files are due only if the host started them meanwhile.) A running
  // one is a group of its own: reloaded or restarted, then gated, before the next is touched.
  const due = desired.services.filter((spec) => services.some((s) => s.name === spec.name) || reloads.some((r) => r.name === spec.name))
  const planned = (name: string) => services.find((s) => s.name === name)
  const notRunning = (spec: (typeof due)[number]) => Boolean(planned(spec.name)?.start)
  for (let i = 0; i < due.length;) {
    let end = i
    while (end < due.length && notRunning(due[end]!)) end++
    const group = due.slice(i, Math.max(end, i + 1))
    i += group.length
    // Said before the round trip, from the plan (a service the host started meanwhile is only reloaded, if at all).
    const starting = group.filter((g) => planned(g.name)?.start)
    if (starting.length) step(`starting ${starting.map((g) => g.name).join(', ')}`)
    const r = await runner.run(bringUpAllScript(group.map((g) => ({name: g.name, enable: Boolean(planned(g.name)?.enable)}))), {
      check: false,
    })
    const ups = readBringUpAll(r)
    let settle = false
    for (const spec of group) {
      const up = ups.get(spec.name)
      if (!up) throw new RemoteError(host.name, shownCommand(`systemctl enable ${spec.name}`), r.code, r.stderr || r.stdout)
      const reload = reloads.find((x) => x.name === spec.name)
      // Stopped since it was planned (a reload was due): it was started instead.
      if (!up.wasActive && !planned(spec.name)?.start) step(`starting ${spec.name}`)
      if (up.wasActive && reload) {
        step(`${reload.how}ing ${spec.name}`)
        await runner.run(`systemctl ${reload.how} ${shq(spec.name)}`, {check: false})
        // A reload is a signal systemctl does not wait for: the daemon is given time to act on it before the probes.
        settle ||= reload.how === 'reload'
      }
      touched.push({spec, wasActive: up.wasActive})
    }
    if (settle) await sleep(timing.settleMs)
    const bad = await waitHealthyAll(runner, group, timing)
    if (bad) await unhealthy(bad.name, bad.problem)
  }

  const live = only(plan.changes, 'live').map((c) => c.action)
  const fresh = o.freshConnection
  const ctx: HostApply = {
    runner,
    host,
    step,
    written,
    restoreScript,
    freshConnection: async () => {
      if (!fresh) throw new Failure(`${host.name}: cannot confirm this change without a fresh connection`)
      await fresh()
    },
  }
  const guarded = live.filter((a) => a.guarded && a.apply)
  for (const a of live.filter((x) => !x.guarded && x.apply)) await a.apply!(ctx)
  // What is left pending now is only what the guarded steps still have to do.
  const stillPending = (actions: LiveAction[]) => actions.flatMap((a) => (a.pending ? [a.pending] : []))
  if (touchedPending) await runner.run(keepPendingScript(stillPending(guarded)))
  // Last, so that a host whose services failed is not also re-firewalled; each behind an automatic revert.
  for (let i = 0; i < guarded.length; i++) {
    await guarded[i]!.apply!(ctx)
    if (guarded[i]!.pending) await runner.run(keepPendingScript(stillPending(guarded.slice(i + 1))))
  }
  return {written, services: touched.map((t) => t.spec.name)}
}
