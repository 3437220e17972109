import {dirname} from 'node:path'
import type {HostDesired} from '../components/index.js'
import type {DesiredFile} from '../components/types.js'
import {Failure} from '../cli/errors.js'
import {activateFirewall} from '../components/firewall/activate.js'
import {SSHD_GUARDED} from '../components/hardening/index.js'
import {applyHardening, reloadSshdGuarded} from '../components/hardening/activate.js'
import {shq} from '../render/safe.js'
import type {Connection} from '../remote/connection.js'
import {PENDING_FILE} from './facts.js'
import type {Change, HostPlan} from './plan.js'

export const BACKUP_DIR = '/var/lib/foobar/backup'

export type Step = (title: string) => void

const tempOf = (path: string) => `${dirname(path)}/.${path.split('/').pop()}.foobar-tmp`
const backupOf = (path: string) => `${BACKUP_DIR}${path}`

/**
 * Writes one file atomically: temp file with the final mode and owner -> the daemon's checker on the candidate ->
 * backup of the previous file -> rename. A `config`-mode checker (nginx -t) runs with the file in place and the
 * previous file is put back if it fails. A dropped connection leaves at most a stray temp file, never a torn one.
 */
export function writeFileScript(f: DesiredFile): string {
  const p = shq(f.path)
  const tmp = shq(tempOf(f.path))
  const bak = shq(backupOf(f.path))
  const lines = [
    'set -e',
    // New directories are world-readable (daemons running as other users read them); the temp file is not.
    `umask 022; mkdir -p ${shq(dirname(f.path))}; umask 077; mkdir -p ${shq(dirname(backupOf(f.path)))}`,
    `cat > ${tmp}`,
    `chown ${shq(`${f.owner}:${f.group}`)} ${tmp}`,
    `chmod ${f.mode.toString(8)} ${tmp}`,
  ]
  if (f.validate?.mode === 'candidate') {
    // The checker's output is kept in a variable, not a fixed-name file in /tmp (a local user could plant a symlink there).
    lines.push(`if ! out=$(${f.validate.command.replaceAll('{}', tmp)} 2>&1); then printf '%s\\n' "$out" >&2; rm -f ${tmp}; echo "validation failed: ${f.path} (previous file kept)" >&2; exit 3; fi`)
  }
  // `.absent` records that there was no previous file, so a rollback later in the run removes the new one.
  lines.push(`if [ -f ${p} ]; then cp -p ${p} ${bak}; rm -f ${bak}.absent; else rm -f ${bak}; : > ${bak}.absent; fi`)
  lines.push(`mv -f ${tmp} ${p}`)
  if (f.validate?.mode === 'config') {
    lines.push(
      `if ! out=$(${f.validate.command} 2>&1); then printf '%s\\n' "$out" >&2; ` +
        `if [ -f ${bak}.absent ]; then rm -f ${p}; else cp -p ${bak} ${p}; fi; echo "validation failed: ${f.path} (previous file restored)" >&2; exit 3; fi`,
    )
  }
  return lines.join('\n')
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

/**
 * Healthy = active and passing its health check twice in a row, a second apart, after a short settle: a reload
 * is asynchronous (nginx's master re-reads its config after the signal), and the old workers must not pass the
 * gate for the new config.
 */
async function waitHealthy(conn: Connection, name: string, health: string | undefined, timeoutMs: number): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  let passes = 0
  await new Promise((r) => setTimeout(r, 1000))
  for (;;) {
    const active = await conn.run(`systemctl is-active ${shq(name)}`, {check: false})
    if (active.stdout.trim() === 'active') {
      const h = health ? await conn.run(health, {check: false}) : {code: 0, stdout: '', stderr: ''}
      if (h.code === 0) {
        if (++passes >= 2) return undefined
      } else {
        passes = 0
        last = `health check failed: ${(h.stderr || h.stdout).trim().split('\n').pop()}`
      }
    } else {
      passes = 0
      last = `${name} is ${active.stdout.trim() || 'not active'}`
    }
    if (Date.now() > deadline) return last
    await new Promise((r) => setTimeout(r, 1000))
  }
}

/** Applies a host's plan. Throws Failure naming the host and what failed; the host is left as it was or converged. */
export async function applyHost(
  conn: Connection,
  desired: HostDesired,
  initialPlan: HostPlan,
  step: Step = () => {},
  replan?: () => Promise<HostPlan>,
  freshConnection?: () => Promise<void>,
): Promise<void> {
  const host = desired.host
  let plan = initialPlan
  let reloads = plan.changes.filter((c): c is Extract<Change, {kind: 'reload'}> => c.kind === 'reload')
  // Recorded before anything changes, so that a run cut short still reloads next time (the lost-handler problem).
  if (reloads.length) {
    await conn.run(`mkdir -p ${shq(dirname(PENDING_FILE))} && printf '%s\\n' ${reloads.map((r) => shq(r.name)).join(' ')} >> ${shq(PENDING_FILE)}`)
  }

  const pkgs = plan.changes.find((c): c is Extract<Change, {kind: 'packages'}> => c.kind === 'packages')
  if (pkgs) {
    step(`installing ${pkgs.install.join(' ')}`)
    const proxy = host.apt.proxy ? ` -o Acquire::http::Proxy=${shq(host.apt.proxy)}` : ''
    const update = await conn.run(`DEBIAN_FRONTEND=noninteractive apt-get${proxy} -q update 2>&1`, {check: false})
    // Offline apt-get update exits 0 with only warnings: check for them.
    if (update.code !== 0 || /^(W: Failed to fetch|E: )/m.test(update.stdout)) {
      throw new Failure(`${host.name}: apt-get update failed: ${update.stdout.split('\n').filter((l) => /^(W|E):/.test(l)).slice(0, 3).join(' | ')}`)
    }
    await conn.run(
      `DEBIAN_FRONTEND=noninteractive apt-get${proxy} -q -y --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install ${pkgs.install.map(shq).join(' ')}`,
    )
    // Packages bring files and services of their own (nginx's default site): plan the rest against what is now there.
    if (replan) {
      const next = await replan()
      const more = next.changes.filter((c): c is Extract<Change, {kind: 'reload'}> => c.kind === 'reload' && !reloads.some((r) => r.name === c.name))
      if (more.length) await conn.run(`mkdir -p ${shq(dirname(PENDING_FILE))} && printf '%s\\n' ${more.map((r) => shq(r.name)).join(' ')} >> ${shq(PENDING_FILE)}`)
      reloads = [...reloads, ...more]
      plan = {host: plan.host, changes: [...next.changes.filter((c) => c.kind !== 'reload' && c.kind !== 'packages'), ...reloads]}
    }
  }

  const hardening = plan.changes.flatMap((c) => (c.kind === 'hardening' ? [c.action] : []))
  const sshd = hardening.some((a) => a.kind === 'sshd')
  // Like a reload: a run cut short after writing the drop-in still reloads sshd (guarded) next time.
  if (sshd) await conn.run(`mkdir -p ${shq(dirname(PENDING_FILE))} && printf '%s\\n' ${SSHD_GUARDED} >> ${shq(PENDING_FILE)}`)

  const written: string[] = []
  for (const c of plan.changes) {
    if (c.kind === 'file') {
      step(`${c.action === 'attributes' ? 'fixing' : 'writing'} ${c.path}`)
      if (c.action === 'attributes') {
        await conn.run(`chown ${shq(`${c.file.owner}:${c.file.group}`)} ${shq(c.path)} && chmod ${c.file.mode.toString(8)} ${shq(c.path)}`)
        continue
      }
      const res = await conn.run(writeFileScript(c.file), {stdin: c.file.content, check: false})
      if (res.code !== 0) {
        if (written.length) await conn.run(restoreScript(written), {check: false})
        throw new Failure(`${host.name}: ${res.stderr.trim().split('\n').slice(-6).join('\n  ')}`)
      }
      written.push(c.path)
    } else if (c.kind === 'remove') {
      step(`removing ${c.path}`)
      await conn.run(`mkdir -p ${shq(dirname(backupOf(c.path)))} && cp -P ${shq(c.path)} ${shq(backupOf(c.path))} && rm -f ${shq(`${backupOf(c.path)}.absent`)} ${shq(c.path)}`)
      written.push(c.path)
    }
  }
  if (written.some((p) => p.startsWith('/etc/systemd/'))) await conn.run('systemctl daemon-reload')

  const services = plan.changes.filter((c): c is Extract<Change, {kind: 'service'}> => c.kind === 'service')
  // In component order: the app is up before nginx's health check asks it.
  for (const spec of desired.services) {
    const svc = services.find((s) => s.name === spec.name)
    const reload = reloads.find((r) => r.name === spec.name)
    if (!svc && !reload) continue
    if (svc?.enable) await conn.run(`systemctl enable ${shq(spec.name)} >/dev/null 2>&1 || systemctl enable ${shq(spec.name)}`)
    const active = (await conn.run(`systemctl is-active ${shq(spec.name)}`, {check: false})).stdout.trim() === 'active'
    if (!active) {
      step(`starting ${spec.name}`)
      await conn.run(`systemctl start ${shq(spec.name)}`, {check: false})
    } else if (reload) {
      step(`${reload.how}ing ${spec.name}`)
      await conn.run(`systemctl ${reload.how} ${shq(spec.name)}`, {check: false})
    }
    const problem = await waitHealthy(conn, spec.name, spec.health, 30_000)
    if (problem) {
      // Put the previous config back and reload again, so the service keeps serving.
      if (written.length) {
        step(`rolling back ${spec.name}`)
        await conn.run(restoreScript(written), {check: false})
        if (written.some((p) => p.startsWith('/etc/systemd/'))) await conn.run('systemctl daemon-reload', {check: false})
        await conn.run(`systemctl ${spec.onChange === 'reload' && active ? 'reload' : 'restart'} ${shq(spec.name)}`, {check: false})
      }
      throw new Failure(`${host.name}: ${spec.name} unhealthy after the change (${problem}); previous config restored`)
    }
  }
  await applyHardening(conn, hardening, step)
  if (sshd) {
    if (!freshConnection) throw new Failure(`${host.name}: cannot confirm an sshd change without a fresh connection`)
    await reloadSshdGuarded(conn, host.hardening.revertAfter, restoreScript(written.filter((p) => p.startsWith('/etc/ssh/'))), freshConnection, step)
  }
  if (reloads.length || sshd) await conn.run(`rm -f ${shq(PENDING_FILE)}`)

  // Last, so that a host whose services failed is not also re-firewalled; guarded by an automatic revert.
  if (plan.changes.some((c) => c.kind === 'firewall')) {
    if (!freshConnection) throw new Failure(`${host.name}: cannot confirm a firewall change without a fresh connection`)
    await activateFirewall(conn, host, written, freshConnection, step)
  }
}
