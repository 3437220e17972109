import {Failure} from '../../util/errors.js'
import {shq} from '../../util/shell.js'
import type {Runner} from '../../remote/runner.js'
import {type RevertGuard, armRevert, assertNoPendingRevert, confirmOrRevert, revertNow} from '../guard.js'
import type {HardeningAction} from './live.js'

export const SSHD_REVERT_UNIT = 'foobar-sshd-revert'
const STATE_DIR = '/var/lib/foobar/sshd'

/** Modes, units and kernel settings: each is plain and safe to apply on the existing connection. */
export async function applyHardening(conn: Runner, actions: HardeningAction[], step: (s: string) => void): Promise<void> {
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i]!
    if (a.kind === 'mode') {
      // The modes next to each other in one round trip (issue 20: one each before), in order; the first that fails
      // stops the rest, as before.
      const modes: Array<HardeningAction & {kind: 'mode'}> = [a]
      while (actions[i + 1]?.kind === 'mode') modes.push(actions[++i] as HardeningAction & {kind: 'mode'})
      step(`tightening ${modes.map((m) => m.path).join(', ')}`)
      await conn.run(modes.map((m) => `chown root:root ${shq(m.path)} && chmod ${m.mode.toString(8)} ${shq(m.path)}`).join(' && '))
    } else if (a.kind === 'disable') {
      step(`disabling ${a.unit}`)
      await conn.run(`systemctl disable --now ${shq(a.unit)}`)
    } else if (a.kind === 'stop') {
      step(`stopping ${a.unit} (container)`)
      await conn.run(`systemctl stop ${shq(a.unit)}; systemctl reset-failed ${shq(a.unit)} 2>/dev/null; true`)
    } else if (a.kind === 'rkhunter') {
      // Minutes of work on a small host: started, not waited for (verify says when it is done).
      step(`building rkhunter's file properties database in the background (${a.unit})`)
      await conn.run(`systemctl start --no-block ${shq(a.unit)}`)
    } else if (a.kind === 'sysctl') {
      step('setting kernel parameters')
      // Keys come from foobar's own list and values are digits; the file in sysctl.d makes them last across boots.
      const r = await conn.run(
        `sysctl -q -w ${Object.entries(a.set)
          .map(([k, v]) => shq(`${k}=${v}`))
          .join(' ')}`,
        {check: false},
      )
      if (r.code !== 0)
        throw new Failure(`${conn.host.name}: sysctl failed: ${(r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' | ')}`)
    }
  }
}

/**
 * Reloads sshd with the new drop-in without ever locking the operator out: a host-side timer restores the
 * previous drop-in and reloads again unless a *fresh* SSH connection works after the reload (existing sessions
 * survive a reload, so only a new one proves that the next login will work). `restore` puts back the files
 * written in this run (the engine's backups).
 */
export async function reloadSshdGuarded(
  conn: Runner,
  seconds: number,
  restore: string,
  freshConnection: () => Promise<void>,
  step: (s: string) => void,
): Promise<void> {
  const guard: RevertGuard = {unit: SSHD_REVERT_UNIT, script: `${STATE_DIR}/revert.sh`, seconds, what: 'sshd'}
  await assertNoPendingRevert(conn, guard)
  const script = [
    '#!/bin/sh',
    '# Written by foobar: puts back the sshd config as it was before a change that was not confirmed in time.',
    restore,
    'systemctl reload ssh',
    "logger -t foobar 'sshd change not confirmed: previous config restored' || true",
  ]
  await conn.run(`mkdir -p ${STATE_DIR} && chmod 700 ${STATE_DIR} && cat > ${guard.script}`, {stdin: `${script.join('\n')}\n`})
  await armRevert(conn, guard)
  step(`reloading ssh; automatic revert in ${seconds}s unless confirmed`)
  const r = await conn.run('sshd -t && systemctl reload ssh', {check: false})
  if (r.code !== 0) {
    await revertNow(conn, guard)
    throw new Failure(
      `${conn.host.name}: reloading ssh failed, previous config restored: ${(r.stderr || r.stdout).trim().split('\n').pop()}`,
    )
  }
  step('checking a fresh SSH connection')
  await confirmOrRevert(conn, guard, () => settled(freshConnection))
  step('sshd change confirmed')
}

/** sshd re-executes itself on reload and listens again a moment later: a refused first try is not a verdict. */
async function settled(fresh: () => Promise<void>, tries = 3): Promise<void> {
  for (let i = 1; ; i++) {
    try {
      return await fresh()
    } catch (error) {
      if (i >= tries) throw error
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
}
