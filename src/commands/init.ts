import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, readdirSync} from 'node:fs'
import {homedir} from 'node:os'
import {join} from 'node:path'
import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import type {NewHost, NewInventory} from '../inventory/compose.js'
import {composeInventory} from '../inventory/compose.js'
import {draftFromSshConfig} from '../inventory/import.js'
import {ROLES, type Role, parseInventory} from '../inventory/index.js'
import {resolveAddresses, writeNewInventory} from '../inventory/new-file.js'
import {type ScannedKey, knownHostsName, recordHostKeys, scanHostKeys} from '../remote/keyscan.js'
import {UserError} from '../util/errors.js'

interface HostKeys {
  host: string
  address: string
  fingerprints: string[]
  recorded: boolean
  error?: string
}

/** `web1=10.0.0.2:web,db` (or web+db); an IPv6 address keeps its colons: the roles follow the last one. */
export function parseHostFlag(value: string): NewHost {
  const eq = value.indexOf('=')
  const colon = value.lastIndexOf(':')
  const roles = value
    .slice(colon + 1)
    .split(/[+,]/)
    .filter(Boolean)
  if (eq <= 0 || colon <= eq + 1 || roles.length === 0 || roles.some((r) => !(ROLES as readonly string[]).includes(r)))
    throw new UserError(
      `--host ${value}: expected NAME=ADDRESS:ROLE[,ROLE] with roles among ${ROLES.join(', ')}`,
      [],
      ['--host web1=10.0.0.2:web,db'],
    )
  return {name: value.slice(0, eq), address: value.slice(eq + 1, colon), roles: ROLES.filter((r) => roles.includes(r))}
}

/** The address this machine reaches `target` from (the kernel's route choice), for the admin networks' suggestion. */
function sourceAddressFor(target: string): string | undefined {
  const r = spawnSync('ip', ['route', 'get', target], {encoding: 'utf8'})
  return /\bsrc (\S+)/.exec(r.stdout ?? '')?.[1]
}

export default class Init extends FoobarCommand<typeof Init> {
  static summary = 'Write a first inventory: asks for the site, hosts, SSH and networks (or takes flags), records host keys.'
  static description = [
    'Interactive in a terminal: offers the hosts of ~/.ssh/config and the keys in ~/.ssh, suggests the admin network from',
    'the address this machine reaches the hosts from, then connects to each host (ssh-keyscan), shows its host key',
    'fingerprint and records it in known_hosts when you confirm. With --non-interactive (or without a terminal) every',
    'answer comes from flags; host keys are recorded only with --accept-host-keys. The inventory is validated before',
    'it is written; an existing file is replaced only with --force.',
  ].join(' ')
  static examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init --non-interactive --domain www.example.org --email ops@example.org --admin-cidr 198.51.100.0/24 --host lb1=192.0.2.10:lb --host web1=192.0.2.11:web,db --host web2=192.0.2.12:web,db --accept-host-keys',
  ]
  static flags = {
    'non-interactive': Flags.boolean({summary: 'Ask nothing: every answer from flags (the default without a terminal).'}),
    out: Flags.string({char: 'o', summary: 'Where to write the inventory.', default: 'inventories/foobar.yml'}),
    force: Flags.boolean({summary: 'Replace an existing file.'}),
    domain: Flags.string({summary: "The site's name (site.domain)."}),
    alias: Flags.string({summary: 'Another name of the site.', multiple: true}),
    email: Flags.string({summary: "Contact for Let's Encrypt."}),
    host: Flags.string({summary: 'NAME=ADDRESS:ROLE[,ROLE] (roles: lb, web, db, monitoring).', multiple: true}),
    'admin-cidr': Flags.string({summary: 'A network allowed to reach SSH.', multiple: true}),
    'ssh-user': Flags.string({summary: 'SSH user (sudo is used when not root).'}),
    'ssh-port': Flags.integer({summary: 'SSH port.', min: 1, max: 65535}),
    'identity-file': Flags.string({summary: 'SSH private key.'}),
    'known-hosts': Flags.string({summary: 'known_hosts file the host keys go to.', default: '~/.ssh/known_hosts'}),
    tls: Flags.string({summary: 'Certificate source.', options: ['acme', 'self-signed']}),
    'accept-host-keys': Flags.boolean({summary: 'Record the hosts’ keys without asking (non-interactive).'}),
    connect: Flags.boolean({
      summary: 'Connect to each host for its host key (--no-connect: write the inventory only).',
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<{file: string; hosts: NewHost[]; hostKeys: HostKeys[]}> {
    const f = this.flags
    const interactive = !f['non-interactive'] && !this.jsonEnabled() && process.stdin.isTTY === true && process.stdout.isTTY === true
    let replace = f.force
    if (existsSync(f.out) && !f.force) {
      if (interactive) {
        const {confirm} = await import('@inquirer/prompts')
        replace = await confirm({message: `${f.out} exists. Replace it?`, default: false})
      }
      if (!replace) throw new UserError(`${f.out} exists: not replaced`, [], ['--force replaces it', '--out OTHER.yml'])
    }
    const answers = interactive ? await this.ask() : this.fromFlags()
    const notes: string[] = []
    answers.hosts = await resolveAddresses(answers.hosts, notes)
    for (const n of notes) this.warn(n)
    // Validated before anything is contacted or written (the same checks as inventory check).
    parseInventory(composeInventory(answers), f.out)
    const hostKeys: HostKeys[] = []
    if (f.connect) {
      for (const h of answers.hosts) {
        const port = h.port ?? answers.ssh.port
        let keys: ScannedKey[] = []
        try {
          keys = await scanHostKeys(h.address, port)
        } catch (error) {
          hostKeys.push({host: h.name, address: h.address, fingerprints: [], recorded: false, error: (error as Error).message})
          this.warn(
            `${h.name}: ${(error as Error).message}; its key is not recorded (provision --accept-new-host-keys records it on first use)`,
          )
          continue
        }
        const fingerprints = keys.map((k) => `${k.type} ${k.fingerprint}`)
        this.say(`${h.name} (${knownHostsName(h.address, port)}): ${fingerprints.join(', ')}`)
        let accept = f['accept-host-keys']
        if (interactive && !accept) {
          const {confirm} = await import('@inquirer/prompts')
          accept = await confirm({
            message: `Record ${h.name}'s host key in ${answers.ssh.knownHosts}? (compare the fingerprint with the host's console first)`,
            default: true,
          })
        }
        if (accept) await recordHostKeys(answers.ssh.knownHosts, keys)
        hostKeys.push({host: h.name, address: h.address, fingerprints, recorded: accept})
      }
      const unrecorded = hostKeys.filter((k) => !k.recorded && !k.error)
      if (unrecorded.length > 0 && !interactive)
        this.warn(`host keys not recorded for ${unrecorded.map((k) => k.host).join(', ')}: --accept-host-keys records them`)
    }
    const written = await writeNewInventory(f.out, answers, replace)
    this.say(`wrote ${written.file}: ${answers.hosts.length} hosts; next: foobar inventory check -i ${f.out}, then foobar plan -i ${f.out}`)
    return {file: written.file, hosts: answers.hosts, hostKeys}
  }

  private fromFlags(): NewInventory {
    const f = this.flags
    const missing = [
      !f.domain && '--domain',
      !f.email && '--email',
      !f.host?.length && '--host (one per host)',
      !f['admin-cidr']?.length && '--admin-cidr',
    ].filter(Boolean) as string[]
    if (missing.length > 0)
      throw new UserError(
        `init without a terminal needs ${missing.join(', ')}`,
        [],
        [
          'foobar init --non-interactive --domain www.example.org --email ops@example.org --admin-cidr 198.51.100.0/24 --host web1=192.0.2.11:web,db',
        ],
      )
    return {
      domain: f.domain!,
      aliases: f.alias ?? [],
      email: f.email!,
      adminCidrs: f['admin-cidr']!,
      ssh: {user: f['ssh-user'] ?? 'root', port: f['ssh-port'] ?? 22, identityFile: f['identity-file'], knownHosts: f['known-hosts']},
      tls: (f.tls as 'acme' | 'self-signed' | undefined) ?? 'acme',
      hosts: f.host!.map(parseHostFlag),
      origin: '`foobar init`',
    }
  }

  /** The questions, each skipped when its flag is given. */
  private async ask(): Promise<NewInventory> {
    const {input, checkbox, select, confirm} = await import('@inquirer/prompts')
    const f = this.flags
    const required = (what: string) => (v: string) => (v.trim() ? true : `${what} is needed`)
    const domain = f.domain ?? (await input({message: "The site's name (e.g. www.example.org):", validate: required('a name')})).trim()
    const email = f.email ?? (await input({message: "Contact e-mail for Let's Encrypt:", validate: required('an e-mail address')})).trim()
    const hosts: NewHost[] = (f.host ?? []).map(parseHostFlag)
    const sshConfig = join(homedir(), '.ssh', 'config')
    const known = existsSync(sshConfig) ? draftFromSshConfig(readFileSync(sshConfig, 'utf8'), [{pattern: '**', roles: ['web']}]).hosts : []
    if (hosts.length === 0 && known.length > 0) {
      const picked = await checkbox({
        message: 'Hosts from ~/.ssh/config to include (space to pick, enter to go on):',
        choices: known.map((h) => ({name: `${h.name} (${h.address})`, value: h.name})),
      })
      for (const name of picked) {
        const h = known.find((k) => k.name === name)!
        const roles = await checkbox<Role>({message: `Roles of ${name}:`, choices: ROLES.map((r) => ({name: r, value: r})), required: true})
        hosts.push({...h, roles})
      }
    }
    while (hosts.length === 0 || (await confirm({message: `Add ${hosts.length ? 'another' : 'a'} host?`, default: hosts.length === 0}))) {
      const name = (await input({message: 'Host name (e.g. web1):', validate: required('a name')})).trim()
      const address = (await input({message: `${name}'s address (IP or DNS name):`, validate: required('an address')})).trim()
      const roles = await checkbox<Role>({message: `Roles of ${name}:`, choices: ROLES.map((r) => ({name: r, value: r})), required: true})
      hosts.push({name, address, roles})
    }
    const users = hosts.flatMap((h) => (h.user ? [h.user] : []))
    const user = f['ssh-user'] ?? (await input({message: 'SSH user (sudo is used when not root):', default: users[0] ?? 'root'})).trim()
    const port = f['ssh-port'] ?? 22
    const keys = existsSync(join(homedir(), '.ssh'))
      ? readdirSync(join(homedir(), '.ssh'))
          .filter((n) => /^id_[a-z0-9_]+$/.test(n))
          .map((n) => join('~/.ssh', n))
      : []
    const identityFile =
      (f['identity-file'] ??
        (await select<string>({
          message: 'SSH key:',
          choices: [...keys.map((k) => ({name: k, value: k})), {name: 'the SSH agent / ~/.ssh/config decides', value: ''}],
        }))) ||
      undefined
    const from = hosts[0] ? sourceAddressFor(hosts[0].address) : undefined
    const admin =
      f['admin-cidr'] ??
      (
        await input({
          message: 'Networks allowed to reach SSH (comma-separated CIDRs):',
          default: from ? `${from}/${from.includes(':') ? 128 : 32}` : undefined,
          validate: required('a network'),
        })
      )
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    const dbs = hosts.filter((h) => h.roles.includes('db'))
    if (dbs.length > 1) {
      const primary = await select({
        message: 'The database primary (the others replicate from it):',
        choices: dbs.map((h) => ({name: h.name, value: h.name})),
      })
      hosts.sort((a, b) => (a.name === primary ? -1 : b.name === primary ? 1 : 0))
    }
    const tls =
      (f.tls as 'acme' | 'self-signed' | undefined) ??
      (await select<'acme' | 'self-signed'>({
        message: 'Site certificate:',
        choices: [
          {name: "Let's Encrypt (ACME, HTTP-01 through the load balancer)", value: 'acme'},
          {name: 'self-signed (a trial)', value: 'self-signed'},
        ],
      }))
    return {
      domain,
      aliases: f.alias ?? [],
      email,
      adminCidrs: admin,
      ssh: {user, port, identityFile, knownHosts: f['known-hosts']},
      tls,
      hosts,
      origin: '`foobar init`',
    }
  }
}
