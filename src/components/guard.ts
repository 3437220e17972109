import {Failure} from '../util/errors.js'
import type {Runner} from '../remote/runner.js'

/**
 * A change that could cut off SSH (firewall rules, sshd's config) is guarded on the host itself: a transient
 * systemd timer runs a revert script unless foobar cancels it after a *fresh* connection worked. The timer lives
 * on the host, so the revert happens even when foobar's own connection is gone.
 */
export interface RevertGuard {
  /** systemd unit name of the timer and its service. */
  unit: string
  /** The revert script on the host (written by the caller before arming). */
  script: string
  seconds: number
  /** What is guarded, for messages ("firewall", "sshd"). */
  what: string
}

/** An earlier unconfirmed change is still waiting for its revert: changing more now would race it. */
export async function assertNoPendingRevert(conn: Runner, g: RevertGuard): Promise<void> {
  const pending = await conn.run(`systemctl is-active ${g.unit}.timer`, {check: false})
  if (pending.stdout.trim() === 'active') {
    throw new Failure(
      `${conn.host.name}: a ${g.what} revert from an earlier unconfirmed change is still pending; wait ${g.seconds}s and run again`,
    )
  }
}

export async function armRevert(conn: Runner, g: RevertGuard): Promise<void> {
  // AccuracySec=1s: systemd's default accuracy of a minute would leave the operator locked out that much longer.
  await conn.run(
    `systemctl reset-failed ${g.unit}.timer ${g.unit}.service >/dev/null 2>&1 || true; ` +
      `systemd-run --quiet --unit=${g.unit} --on-active=${g.seconds}s --timer-property=AccuracySec=1s /bin/sh ${g.script}`,
  )
}

/** The change failed on its own: revert at once instead of waiting for the timer. */
export async function revertNow(conn: Runner, g: RevertGuard): Promise<void> {
  await conn.run(`systemctl stop ${g.unit}.timer; /bin/sh ${g.script}`, {check: false})
}

/** Proves a fresh connection works, then cancels the revert; else leaves the timer to undo the change. */
export async function confirmOrRevert(conn: Runner, g: RevertGuard, freshConnection: () => Promise<void>): Promise<void> {
  try {
    await freshConnection()
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error)
    throw new Failure(
      `${conn.host.name}: a fresh SSH connection failed after the ${g.what} change (${why}); the host restores its previous ${g.what === 'firewall' ? 'rules' : 'config'} on its own within ${g.seconds}s`,
    )
  }
  await conn.run(`systemctl stop ${g.unit}.timer`)
}
