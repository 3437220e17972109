import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {Args, Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import type {NewHost} from '../../inventory/compose.js'
import {draftFromAnsible, draftFromSshConfig, parseAnsibleIni, parseAnsibleYaml, parseRoleMaps} from '../../inventory/import.js'
import {resolveAddresses, writeNewInventory} from '../../inventory/new-file.js'
import {UserError} from '../../util/errors.js'

export default class InventoryImport extends FoobarCommand<typeof InventoryImport> {
  static summary = 'Write a foobar inventory from an Ansible inventory (INI or YAML) or the hosts of ~/.ssh/config.'
  static description = [
    'Groups become roles by name (lb/loadbalancers/haproxy → lb, web/webservers/nginx → web, db/dbservers/mysql → db,',
    'monitoring/prometheus → monitoring) or by --map PATTERN=ROLE[+ROLE] (picomatch patterns over group names; for',
    '--from ssh-config over host names). ansible_host/ansible_user/ansible_port (HostName/User/Port) are kept; a name',
    'that is not an IP address is resolved. The first db host becomes the primary. The result is validated like any',
    'inventory and written only when valid; an existing file is replaced only with --force.',
  ].join(' ')
  static examples = [
    '<%= config.bin %> inventory import hosts.ini --domain www.example.org --email ops@example.org --admin-cidr 198.51.100.0/24',
    "<%= config.bin %> inventory import --from ssh-config --map 'web*=web+db' --map 'lb*=lb' --domain … --email … --admin-cidr …",
  ]
  static args = {source: Args.string({description: 'The Ansible inventory file (default with --from ssh-config: ~/.ssh/config).'})}
  static flags = {
    from: Flags.string({
      summary: 'What the source is (default: ansible-yaml for .yml/.yaml, else ansible-ini).',
      options: ['ansible-ini', 'ansible-yaml', 'ssh-config'],
    }),
    map: Flags.string({
      summary: 'PATTERN=ROLE[+ROLE]: groups (or ssh_config hosts) matching PATTERN get these roles.',
      multiple: true,
      default: [],
    }),
    out: Flags.string({char: 'o', summary: 'Where to write the inventory.', default: 'inventories/foobar.yml'}),
    force: Flags.boolean({summary: 'Replace an existing file.'}),
    domain: Flags.string({summary: "The site's name (site.domain).", required: true}),
    alias: Flags.string({summary: 'Another name of the site (site.aliases).', multiple: true, default: []}),
    email: Flags.string({summary: "Contact for Let's Encrypt (site.email).", required: true}),
    'admin-cidr': Flags.string({summary: 'A network allowed to reach SSH (firewall.admin_cidrs).', multiple: true, required: true}),
    'ssh-user': Flags.string({summary: 'SSH user when the source names none (default: the most common one, else root).'}),
    'identity-file': Flags.string({summary: 'SSH private key (ssh.identity_file).'}),
    'known-hosts': Flags.string({summary: 'known_hosts file (ssh.known_hosts).', default: '~/.ssh/known_hosts'}),
    tls: Flags.string({summary: 'Certificate source.', options: ['acme', 'self-signed'], default: 'acme'}),
  }

  async run(): Promise<{file: string; hosts: NewHost[]; notes: string[]}> {
    const maps = parseRoleMaps(this.flags.map)
    const from =
      this.flags.from ??
      (this.args.source && /\.ya?ml$/i.test(this.args.source) ? 'ansible-yaml' : this.args.source ? 'ansible-ini' : undefined)
    if (!from)
      throw new UserError('name the source: an Ansible inventory file, or --from ssh-config', [], ['foobar inventory import hosts.ini …'])
    const source = this.args.source ?? (from === 'ssh-config' ? join(homedir(), '.ssh', 'config') : '')
    let text: string
    try {
      text = await readFile(source, 'utf8')
    } catch (error) {
      throw new UserError(`cannot read ${source}: ${(error as Error).message}`)
    }
    const draft =
      from === 'ssh-config'
        ? draftFromSshConfig(text, maps)
        : draftFromAnsible(from === 'ansible-yaml' ? parseAnsibleYaml(text, source) : parseAnsibleIni(text, source), maps)
    const notes = [...draft.notes]
    const hosts = await resolveAddresses(draft.hosts, notes)
    const users = hosts.flatMap((h) => (h.user ? [h.user] : []))
    const common = users.sort((a, b) => users.filter((u) => u === b).length - users.filter((u) => u === a).length)[0]
    const written = await writeNewInventory(
      this.flags.out,
      {
        domain: this.flags.domain,
        aliases: this.flags.alias,
        email: this.flags.email,
        adminCidrs: this.flags['admin-cidr'],
        ssh: {
          user: this.flags['ssh-user'] ?? common ?? 'root',
          port: 22,
          identityFile: this.flags['identity-file'],
          knownHosts: this.flags['known-hosts'],
        },
        tls: this.flags.tls as 'acme' | 'self-signed',
        hosts,
        origin: `\`foobar inventory import\` from ${from === 'ssh-config' ? 'ssh_config' : 'an Ansible inventory'} (${source})`,
      },
      this.flags.force,
    )
    this.say(`wrote ${written.file}: ${hosts.length} hosts`)
    for (const h of hosts)
      this.say(
        `  ${h.name.padEnd(12)} ${h.address.padEnd(16)} ${h.roles.join(', ')}${h.user ? `  (ssh ${h.user}${h.port ? `:${h.port}` : ''})` : ''}`,
      )
    for (const n of notes) this.warn(n)
    this.say(`next: foobar inventory check -i ${this.flags.out}, then foobar plan -i ${this.flags.out}`)
    return {file: written.file, hosts, notes}
  }
}
