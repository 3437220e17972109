import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {down, type DownResult} from '../../lab/index.js'
import {labInventoryFlag} from './up.js'

export default class LabDown extends FoobarCommand<typeof LabDown> {
  static summary = 'Stop the lab: hosts and services by PID, unmount, remove links, namespaces and the bridge.'
  static description =
    'Also clears what a crashed or interrupted `lab up` left behind, and fails listing anything it could not remove. ' +
    'The image cache survives; --purge deletes the lab directory (host disks, keys, known_hosts, secrets).'

  static examples = ['<%= config.bin %> lab down', '<%= config.bin %> lab down --purge']

  static flags = {
    inventory: labInventoryFlag,
    purge: Flags.boolean({summary: "Also delete the hosts' disks and the lab state (keys, known_hosts, secrets)."}),
  }

  async run(): Promise<DownResult> {
    const result = await down({purge: this.flags.purge})
    const stopped = result.stopped.length > 0 ? `stopped ${result.stopped.join(', ')}` : 'nothing was running'
    this.say(`lab down: ${stopped} in ${result.seconds.toFixed(1)} s${result.purged ? '; host state purged' : ''}`)
    return result
  }
}
