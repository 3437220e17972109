import {spawnSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {basename, extname, join, resolve} from 'node:path'
import {UserError} from '../../util/errors.js'
import {packagePath} from '../../util/package.js'
import {shq} from '../../util/shell.js'

/** foobar's own entry point (bin/run.js), which the scheduled job runs. */
export const FOOBAR_BIN = packagePath('bin', 'run.js')

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
  /** The line that says which inventory an entry belongs to: files without it are another inventory's, left alone. */
  marker: string
  /** The entry under its old name (base name only), replaced when it runs this same inventory's renewal. */
  legacy: {files: string[]; timer?: string}
}

export interface ScheduleResult {
  action: 'installed' | 'unchanged' | 'removed' | 'absent'
  files: string[]
  command: string
}

/** Runs `systemctl ARGS`; throws on failure. Injectable for tests. */
export type Systemctl = (args: string[]) => void

/**
 * The entry's name: the inventory's base name and a hash of its absolute path, so two inventories that are both
 * `site.yml` (in different directories) get separate entries (foobar-cert-renew-site-1a2b3c4d).
 */
export function scheduleName(inventoryFile: string): string {
  const base = basename(inventoryFile, extname(inventoryFile)).replace(/[^A-Za-z0-9-]/g, '-')
  return `foobar-cert-renew-${base}-${createHash('sha256').update(resolve(inventoryFile)).digest('hex').slice(0, 8)}`
}

/** The name before entries were unique per inventory (removed when it runs this inventory's renewal). */
const legacyName = (inventoryFile: string) =>
  `foobar-cert-renew-${basename(inventoryFile, extname(inventoryFile)).replace(/[^A-Za-z0-9-]/g, '-')}`

/**
 * The twice-daily `foobar cert renew` for one inventory: a cron entry in cronDir, or a service and a timer
 * (RandomizedDelaySec=1h) in unitDir. Pure: reads and writes nothing.
 */
export function schedulePlan(o: ScheduleOptions): SchedulePlan {
  const node = o.node ?? process.execPath
  const bin = o.bin ?? FOOBAR_BIN
  const name = scheduleName(o.inventoryFile)
  for (const p of [node, bin, o.inventoryFile]) {
    if (/[%\n]/.test(p)) throw new UserError(`cannot schedule: the path ${JSON.stringify(p)} has a character cron treats specially`)
  }
  const command = `${shq(node)} ${shq(bin)} cert renew -i ${shq(o.inventoryFile)}`
  const marker = `# foobar inventory: ${resolve(o.inventoryFile)}\n`
  const legacy = legacyName(o.inventoryFile)
  if (o.systemd) {
    return {
      name,
      command,
      marker,
      legacy: {files: [join(o.unitDir, `${legacy}.service`), join(o.unitDir, `${legacy}.timer`)], timer: `${legacy}.timer`},
      timer: `${name}.timer`,
      files: {
        [join(o.unitDir, `${name}.service`)]:
          `# Managed by foobar: renew the certificate for ${o.domain}.\n${marker}[Unit]\nDescription=foobar cert renew (${o.domain})\n\n[Service]\nType=oneshot\nExecStart=${command}\n`,
        [join(o.unitDir, `${name}.timer`)]:
          `# Managed by foobar.\n${marker}[Unit]\nDescription=foobar cert renew (${o.domain}), twice a day\n\n[Timer]\nOnCalendar=*-*-* 03,15:17:00\nRandomizedDelaySec=3600\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n`,
      },
    }
  }
  return {
    name,
    command,
    marker,
    legacy: {files: [join(o.cronDir, legacy)]},
    files: {
      [join(o.cronDir, name)]:
        `# Managed by foobar: renew the certificate for ${o.domain} when due (silent otherwise).\n` +
        marker +
        `SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n` +
        `17 3,15 * * * root ${command} --random-delay 3600\n`,
    },
  }
}

/** Whether an existing file is this inventory's entry (by its marker, or for an old entry by the command it runs). */
function ours(plan: SchedulePlan, path: string): boolean {
  const text = readFileSync(path, 'utf8')
  return text.includes(plan.marker) || text.includes(`cert renew -i ${plan.command.split(' cert renew -i ')[1]}`)
}

/** An entry under the old (shared) name that runs this inventory's renewal: replaced by the new one. */
function removeLegacy(plan: SchedulePlan, systemctl: Systemctl): string[] {
  const present = plan.legacy.files.filter((p) => existsSync(p) && !(p in plan.files))
  if (present.length === 0 || !present.every((p) => ours(plan, p))) return []
  if (plan.legacy.timer) systemctl(['disable', '--now', plan.legacy.timer])
  for (const p of present) unlinkSync(p)
  return present
}

/**
 * Writes the files that are missing or differ (idempotent); with a timer, reloads systemd and enables it. A file
 * of the same name that belongs to another inventory is never replaced.
 */
export function installSchedule(plan: SchedulePlan, systemctl: Systemctl = runSystemctl): ScheduleResult {
  const paths = Object.keys(plan.files)
  const foreign = paths.filter((p) => existsSync(p) && !ours(plan, p))
  if (foreign.length)
    throw new UserError(
      `cannot schedule: ${foreign.join(', ')} belongs to another inventory; not replacing it`,
      [],
      ['Remove it with `foobar cert schedule --remove -i` that inventory, or by hand.'],
    )
  const stale = paths.filter((p) => !existsSync(p) || readFileSync(p, 'utf8') !== plan.files[p])
  for (const p of stale) writeFileSync(p, plan.files[p]!, {mode: 0o644})
  const legacy = removeLegacy(plan, systemctl)
  if (plan.timer && stale.length > 0) {
    systemctl(['daemon-reload'])
    systemctl(['enable', '--now', plan.timer])
  }
  return {action: stale.length > 0 || legacy.length > 0 ? 'installed' : 'unchanged', files: paths, command: plan.command}
}

/** Removes this inventory's files that exist (never another inventory's), disabling the timer first. */
export function removeSchedule(plan: SchedulePlan, systemctl: Systemctl = runSystemctl): ScheduleResult {
  const present = Object.keys(plan.files).filter((p) => existsSync(p) && ours(plan, p))
  if (plan.timer && present.length > 0) systemctl(['disable', '--now', plan.timer])
  for (const p of present) unlinkSync(p)
  const legacy = removeLegacy(plan, systemctl)
  const removed = [...present, ...legacy]
  return {action: removed.length > 0 ? 'removed' : 'absent', files: removed, command: plan.command}
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
