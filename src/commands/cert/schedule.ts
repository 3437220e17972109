import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, unlinkSync, writeFileSync} from 'node:fs'
import {basename, extname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {UserError} from '../../cli/errors.js'
import {loadInventory} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'

const BIN = resolve(fileURLToPath(import.meta.url), '..', '..', '..', '..', 'bin', 'run.js')

export default class CertSchedule extends FoobarCommand<typeof CertSchedule> {
  static summary = 'Install (or --remove) the twice-daily `foobar cert renew` on this control machine: a cron entry or a systemd timer.'
  static flags = {
    remove: Flags.boolean({summary: 'Remove the entry.'}),
    systemd: Flags.boolean({summary: 'A systemd timer (RandomizedDelaySec=1h) instead of /etc/cron.d.'}),
    'cron-dir': Flags.string({summary: 'Where cron entries go.', default: '/etc/cron.d', hidden: true}),
    'unit-dir': Flags.string({summary: 'Where systemd units go.', default: '/etc/systemd/system', hidden: true}),
  }

  async run(): Promise<{action: 'installed' | 'unchanged' | 'removed' | 'absent'; files: string[]; command: string}> {
    const inv = await loadInventory(this.flags.inventory)
    const name = `foobar-cert-renew-${basename(inv.file, extname(inv.file)).replace(/[^A-Za-z0-9-]/g, '-')}`
    for (const p of [process.execPath, BIN, inv.file]) {
      if (/[%\n]/.test(p)) throw new UserError(`cannot schedule: the path ${JSON.stringify(p)} has a character cron treats specially`)
    }
    const command = `${shq(process.execPath)} ${shq(BIN)} cert renew -i ${shq(inv.file)}`
    const files: Record<string, string> = this.flags.systemd
      ? {
          [join(this.flags['unit-dir'], `${name}.service`)]: `# Managed by foobar: renew the certificate for ${inv.site.domain}.\n[Unit]\nDescription=foobar cert renew (${inv.site.domain})\n\n[Service]\nType=oneshot\nExecStart=${command}\n`,
          [join(this.flags['unit-dir'], `${name}.timer`)]: `# Managed by foobar.\n[Unit]\nDescription=foobar cert renew (${inv.site.domain}), twice a day\n\n[Timer]\nOnCalendar=*-*-* 03,15:17:00\nRandomizedDelaySec=3600\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n`,
        }
      : {
          [join(this.flags['cron-dir'], name)]:
            `# Managed by foobar: renew the certificate for ${inv.site.domain} when due (silent otherwise).\n` +
            `SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n` +
            `17 3,15 * * * root ${command} --random-delay 3600\n`,
        }
    const paths = Object.keys(files)
    if (this.flags.remove) {
      const present = paths.filter((p) => existsSync(p))
      if (this.flags.systemd && present.length) this.systemctl(['disable', '--now', `${name}.timer`])
      for (const p of present) unlinkSync(p)
      this.say(present.length ? `removed ${present.join(', ')}` : 'nothing to remove')
      return {action: present.length ? 'removed' : 'absent', files: present, command}
    }
    const stale = paths.filter((p) => !existsSync(p) || readFileSync(p, 'utf8') !== files[p])
    for (const p of stale) writeFileSync(p, files[p]!, {mode: 0o644})
    if (this.flags.systemd && stale.length) {
      this.systemctl(['daemon-reload'])
      this.systemctl(['enable', '--now', `${name}.timer`])
    }
    this.say(stale.length ? `installed ${paths.join(', ')}: ${command}` : `already installed: ${paths.join(', ')}`)
    return {action: stale.length ? 'installed' : 'unchanged', files: paths, command}
  }

  private systemctl(args: string[]): void {
    const r = spawnSync('systemctl', args, {encoding: 'utf8'})
    if (r.status !== 0) throw new UserError(`systemctl ${args.join(' ')} failed: ${(r.stderr || r.error?.message || '').trim()}`, [], ['Without systemd, schedule with cron (drop --systemd).'])
  }
}


