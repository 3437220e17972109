import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {basename, extname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {UserError} from '../../util/errors.js'
import {shq} from '../../util/shell.js'

/** foobar's own entry point (bin/run.js), which the scheduled job runs. */
export const FOOBAR_BIN = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'bin', 'run.js')

export interface ScheduleOptions {
  /** The inventory file the job renews for (absolute, as loaded). */
  inventoryFile: string
  domain: string
  /** A systemd timer instead of a cron entry. */
  systemd: boolean
  cronDir: string
  unitDir: string
  /** The node binary and foobar's bin/run.js (defaults: this process's). */
  node?: string
  bin?: string
}

/** What the schedule consists of: the files with their content, the command they run, the timer unit if any. */
export interface SchedulePlan {
  name: string
  command: string
  files: Record<string, string>
  /** `<name>.timer` with --systemd. */
  timer?: string
}

export interface ScheduleResult {
  action: 'installed' | 'unchanged' | 'removed' | 'absent'
  files: string[]
  command: string
}

/** Runs `systemctl ARGS`; throws on failure. Injectable for tests. */
export type Systemctl = (args: string[]) => void

/**
 * The twice-daily `foobar cert renew` for one inventory: a cron entry in cronDir, or a service and a timer
 * (RandomizedDelaySec=1h) in unitDir. Pure: reads and writes nothing.
 */
export function schedulePlan(o: ScheduleOptions): SchedulePlan {
  const node = o.node ?? process.execPath
  const bin = o.bin ?? FOOBAR_BIN
  const name = `foobar-cert-renew-${basename(o.inventoryFile, extname(o.inventoryFile)).replace(/[^A-Za-z0-9-]/g, '-')}`
  for (const p of [node, bin, o.inventoryFile]) {
    if (/[%\n]/.test(p)) throw new UserError(`cannot schedule: the path ${JSON.stringify(p)} has a character cron treats specially`)
  }
  const command = `${shq(node)} ${shq(bin)} cert renew -i ${shq(o.inventoryFile)}`
  if (o.systemd) {
    return {
      name,
      command,
      timer: `${name}.timer`,
      files: {
        [join(o.unitDir, `${name}.service`)]:
          `# Managed by foobar: renew the certificate for ${o.domain}.\n[Unit]\nDescription=foobar cert renew (${o.domain})\n\n[Service]\nType=oneshot\nExecStart=${command}\n`,
        [join(o.unitDir, `${name}.timer`)]:
          `# Managed by foobar.\n[Unit]\nDescription=foobar cert renew (${o.domain}), twice a day\n\n[Timer]\nOnCalendar=*-*-* 03,15:17:00\nRandomizedDelaySec=3600\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n`,
      },
    }
  }
  return {
    name,
    command,
    files: {
      [join(o.cronDir, name)]:
        `# Managed by foobar: renew the certificate for ${o.domain} when due (silent otherwise).\n` +
        `SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n` +
        `17 3,15 * * * root ${command} --random-delay 3600\n`,
    },
  }
}

/** Writes the files that are missing or differ (idempotent); with a timer, reloads systemd and enables it. */
export function installSchedule(plan: SchedulePlan, systemctl: Systemctl = runSystemctl): ScheduleResult {
  const paths = Object.keys(plan.files)
  const stale = paths.filter((p) => !existsSync(p) || readFileSync(p, 'utf8') !== plan.files[p])
  for (const p of stale) writeFileSync(p, plan.files[p]!, {mode: 0o644})
  if (plan.timer && stale.length > 0) {
    systemctl(['daemon-reload'])
    systemctl(['enable', '--now', plan.timer])
  }
  return {action: stale.length > 0 ? 'installed' : 'unchanged', files: paths, command: plan.command}
}

/** Removes the files that exist, disabling the timer first. */
export function removeSchedule(plan: SchedulePlan, systemctl: Systemctl = runSystemctl): ScheduleResult {
  const present = Object.keys(plan.files).filter((p) => existsSync(p))
  if (plan.timer && present.length > 0) systemctl(['disable', '--now', plan.timer])
  for (const p of present) unlinkSync(p)
  return {action: present.length > 0 ? 'removed' : 'absent', files: present, command: plan.command}
}

/** The real systemctl on this machine. */
export const runSystemctl: Systemctl = (args) => {
  const r = spawnSync('systemctl', args, {encoding: 'utf8'})
  if (r.status !== 0)
    throw new UserError(
      `systemctl ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`,
      [],
      ['Without systemd, schedule with cron (drop --systemd).'],
    )
}
