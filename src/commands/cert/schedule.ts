import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {type ScheduleResult, installSchedule, removeSchedule, schedulePlan} from '../../components/tls/schedule.js'
import {loadInventory} from '../../inventory/index.js'

export default class CertSchedule extends FoobarCommand<typeof CertSchedule> {
  static summary = 'Install (or --remove) the twice-daily `foobar cert renew` on this control machine: a cron entry or a systemd timer.'
  static flags = {
    remove: Flags.boolean({summary: 'Remove the entry.'}),
    systemd: Flags.boolean({summary: 'A systemd timer (RandomizedDelaySec=1h) instead of /etc/cron.d.'}),
    'cron-dir': Flags.string({summary: 'Where cron entries go.', default: '/etc/cron.d', hidden: true}),
    'unit-dir': Flags.string({summary: 'Where systemd units go.', default: '/etc/systemd/system', hidden: true}),
  }

  async run(): Promise<ScheduleResult> {
    const inv = await loadInventory(this.flags.inventory)
    const plan = schedulePlan({
      inventoryFile: inv.file,
      domain: inv.site.domain,
      systemd: this.flags.systemd,
      cronDir: this.flags['cron-dir'],
      unitDir: this.flags['unit-dir'],
    })
    if (this.flags.remove) {
      const result = removeSchedule(plan)
      this.say(result.files.length ? `removed ${result.files.join(', ')}` : 'nothing to remove')
      return result
    }
    const result = installSchedule(plan)
    this.say(
      result.action === 'installed'
        ? `installed ${result.files.join(', ')}: ${result.command}`
        : `already installed: ${result.files.join(', ')}`,
    )
    return result
  }
}
