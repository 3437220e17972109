import {existsSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {packagePath} from '../../util/package.js'
import {loadInventory} from '../../inventory/index.js'
import {assertLabSupported, MAX_HOSTS, URLS, up, type LabSpec, type UpResult} from '../../lab/index.js'

/** Lab commands read the lab inventory unless told otherwise (and not from FOOBAR_INVENTORY: that is the fleet's). */
export const labInventoryFlag = Flags.string({
  char: 'i',
  summary: 'Inventory file (YAML) whose hosts the lab boots (default: ./inventories/lab.yml, else the one shipped with foobar).',
  default: async () => (existsSync('inventories/lab.yml') ? 'inventories/lab.yml' : packagePath('inventories', 'lab.yml')),
  defaultHelp: async () => 'inventories/lab.yml',
  helpGroup: 'GLOBAL',
})

export default class LabUp extends FoobarCommand<typeof LabUp> {
  static summary = 'Boot the lab: real Debian 12 hosts in systemd-nspawn on 10.77.0.0/24, with an apt proxy and an ACME CA.'
  static description = [
    'Needs root on Linux. Builds and caches a bare Debian 12 image on first use (a minute or two), boots the',
    "inventory's hosts (lb1, web1, web2 for inventories/lab.yml), writes their real SSH host keys to the lab's",
    `known_hosts, and starts an apt cache (apt-cacher-ng, ${URLS.proxy}), pebble (${URLS.acmeDirectory}) and its DNS.`,
    'Running it on a lab that is up starts any lab service that stopped, and touches no host; with other hosts',
    '(--hosts, another inventory), it boots the new ones and stops those no longer wanted (their disks kept), the',
    'hosts in both left running.',
  ].join(' ')

  static examples = ['<%= config.bin %> lab up', '<%= config.bin %> lab up --hosts 6 --json']

  static flags = {
    inventory: labInventoryFlag,
    hosts: Flags.integer({
      summary: `How many hosts (1-${MAX_HOSTS}); default: the inventory's. Extra hosts are extra1, extra2, ...`,
      min: 1,
      max: MAX_HOSTS,
    }),
  }

  async run(): Promise<UpResult> {
    assertLabSupported()
    const inv = await loadInventory(this.flags.inventory)
    const spec: LabSpec = {
      hosts: inv.hosts.map(({name, address, roles}) => ({name, address, roles})),
      domain: inv.site.domain,
      aliases: inv.site.aliases,
      vip: inv.hosts.find((h) => h.roles.includes('lb') && h.lb.vip !== undefined)?.lb.vip,
    }
    const result = await up(spec, {hosts: this.flags.hosts, log: (line) => this.say(line)})
    if (result.resized) {
      const {added, stopped} = result.resized
      const what = [added.length ? `booted ${added.join(', ')}` : '', stopped.length ? `stopped ${stopped.join(', ')} (disk kept)` : '']
      this.say(
        `the lab was up with other hosts: ${what.filter(Boolean).join(', ')} in ${result.seconds.toFixed(1)} s, the others untouched`,
      )
      for (const h of result.hosts) this.say(`  ${h.name.padEnd(8)} ${h.address}`)
    } else if (result.alreadyUp) {
      this.say(
        result.restarted
          ? `the lab is already up (${result.hosts.length} hosts): started ${result.restarted.join(', ')} again, the hosts untouched`
          : `the lab is already up (${result.hosts.length} hosts): nothing to do`,
      )
    } else {
      const image = result.image?.built ? ` (image built in ${result.image.seconds.toFixed(0)} s)` : ''
      this.say(`lab up in ${result.seconds.toFixed(1)} s${image}`)
      for (const h of result.hosts) this.say(`  ${h.name.padEnd(8)} ${h.address}`)
      this.say(
        `enter a host: ${this.config.bin} lab ssh ${result.hosts[0].name} (or ssh -i ${result.sshKey} -o UserKnownHostsFile=${result.knownHosts} deploy@${result.hosts[0].address})`,
      )
    }
    return result
  }
}
