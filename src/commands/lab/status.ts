import {FoobarCommand} from '../../cli/base.js'
import {status, type LabStatus} from '../../lab/index.js'
import {labInventoryFlag} from './up.js'

export default class LabStatusCommand extends FoobarCommand<typeof LabStatusCommand> {
  static summary = 'Show the lab: hosts (address, state, SSH reachable, memory) and the lab services.'
  static examples = ['<%= config.bin %> lab status', '<%= config.bin %> lab status --json']

  static flags = {inventory: labInventoryFlag}

  async run(): Promise<LabStatus> {
    const result = await status()
    this.say(`lab: ${result.up ? 'up' : 'down'}`)
    if (result.hosts.length > 0) {
      this.say(`\n${'HOST'.padEnd(10)}${'ADDRESS'.padEnd(13)}${'STATE'.padEnd(9)}${'SSH'.padEnd(5)}${'MEMORY'.padEnd(9)}ROLES`)
      for (const h of result.hosts) {
        const memory = h.memoryMiB === undefined ? '-' : `${h.memoryMiB} MiB`
        this.say(
          `${h.name.padEnd(10)}${h.address.padEnd(13)}${h.state.padEnd(9)}${(h.ssh ? 'yes' : 'no').padEnd(5)}${memory.padEnd(9)}${h.roles.join(',')}`,
        )
      }
    }
    this.say(`\n${'SERVICE'.padEnd(21)}${'STATE'.padEnd(9)}URL`)
    for (const s of result.services) this.say(`${s.name.padEnd(21)}${s.state.padEnd(9)}${s.url}`)
    if (result.hosts.length > 0) {
      const first = result.hosts[0]!
      this.say(`\nenter a host: ${this.config.bin} lab ssh ${first.name} [-- COMMAND]`)
      this.say(`  or: ssh -i ${result.sshKey} -o UserKnownHostsFile=${result.knownHosts} deploy@${first.address}`)
    }
    this.say(`\nssh key ${result.sshKey}, known_hosts ${result.knownHosts}`)
    this.say(`ACME API CA ${result.acmeCa}, issuing root ${result.acmeRoots}`)
    return result
  }
}
