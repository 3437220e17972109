import type {Role} from './index.js'

/**
 * Pure: a new inventory file's text, commented, from what `foobar init` asked or `inventory import` read. Every value
 * that came from a user or a file is written as a quoted YAML string or a number, never spliced in raw; the result
 * is then validated like any inventory (parseInventory) before it is written.
 */

export interface NewHost {
  name: string
  address: string
  roles: Role[]
  /** Only when it differs from the inventory's ssh.user / ssh.port. */
  user?: string
  port?: number
}

export interface NewInventory {
  domain: string
  aliases: string[]
  email: string
  adminCidrs: string[]
  ssh: {user: string; port: number; identityFile?: string; knownHosts: string}
  tls: 'acme' | 'self-signed'
  hosts: NewHost[]
  /** Where it came from, for the header comment (`foobar init`, `an Ansible inventory: hosts.ini`). */
  origin: string
}

const q = (s: string) => JSON.stringify(s)
const list = (xs: string[]) => `[${xs.map(q).join(', ')}]`

export function composeInventory(n: NewInventory): string {
  const dbHosts = n.hosts.filter((h) => h.roles.includes('db'))
  const monitoring = n.hosts.some((h) => h.roles.includes('monitoring'))
  const lines = [
    `# foobar inventory, written by ${n.origin}. Check it with \`foobar inventory check\`, then \`foobar plan\`.`,
    '# The README lists every setting; what is not here takes its documented default.',
    'site:',
    `  domain: ${q(n.domain)}`,
    ...(n.aliases.length ? [`  aliases: ${list(n.aliases)}`] : []),
    "  # Let's Encrypt account contact (expiry notices).",
    `  email: ${q(n.email)}`,
    '',
    'ssh:',
    `  user: ${q(n.ssh.user)}`,
    `  port: ${n.ssh.port}`,
    ...(n.ssh.identityFile
      ? [`  identity_file: ${q(n.ssh.identityFile)}`]
      : ['  # identity_file: unset, the SSH agent or ~/.ssh/config decides']),
    '  # Host keys are checked against this file; `--accept-new-host-keys` records unknown ones (trust on first use).',
    `  known_hosts: ${q(n.ssh.knownHosts)}`,
    `  sudo: ${n.ssh.user !== 'root'}`,
    '',
    'firewall:',
    '  backend: ufw',
    '  # Who may reach SSH on every host (and the address foobar connects from, always).',
    `  admin_cidrs: ${list(n.adminCidrs)}`,
    '',
    'tls:',
    '  profile: intermediate',
    ...(n.tls === 'acme'
      ? [
          '  source:',
          '    type: acme',
          '    directory: https://acme-v02.api.letsencrypt.org/directory',
          '    challenge: http-01',
          '    key_type: ecdsa',
        ]
      : [
          "  # A self-signed certificate: for a trial; switch to acme (Let's Encrypt) for a real site.",
          '  source:',
          '    type: self-signed',
        ]),
  ]
  if (dbHosts.length > 0) {
    lines.push(
      '',
      'mysql:',
      '  engine: mariadb',
      `  primary: ${q(dbHosts[0]!.name)}`,
      `  replicas: ${list(dbHosts.slice(1).map((h) => h.name))}`,
      '  replication_user: repl',
      '  # A secret reference, never the password itself: {env: NAME} or {file: PATH}.',
      '  replication_password: {env: FOOBAR_REPL_PASSWORD}',
    )
  }
  if (monitoring) lines.push('', 'monitoring:', '  enabled: true')
  lines.push('', 'hosts:')
  for (const h of n.hosts) {
    lines.push(`  - name: ${q(h.name)}`, `    address: ${q(h.address)}`, `    roles: [${h.roles.join(', ')}]`)
    const ssh = [
      ...(h.user !== undefined && h.user !== n.ssh.user ? [`user: ${q(h.user)}`] : []),
      ...(h.port !== undefined && h.port !== n.ssh.port ? [`port: ${h.port}`] : []),
    ]
    if (ssh.length) lines.push(`    ssh: {${ssh.join(', ')}}`)
  }
  return `${lines.join('\n')}\n`
}
