import type {SecretRef} from './primitives.js'
import type {Role} from './schema.js'

export interface PortRule {
  port: number
  proto: 'tcp' | 'udp'
  /** Networks allowed; empty means anywhere. */
  from: string[]
  comment?: string
}

export interface SshSettings {
  user: string
  port: number
  identityFile?: string
  sudo: boolean
  jumpHost?: string
  knownHosts?: string
  connectTimeout: number
}

export interface FirewallSettings {
  backend: 'ufw' | 'iptables'
  adminCidrs: string[]
  extraPorts: Partial<Record<Role, PortRule[]>>
  ipv6: boolean
  revertAfter: number
  allowControlAddress: boolean
}

export type TlsSource =
  | {
      type: 'acme'
      directory: string
      email: string
      challenge: 'http-01' | 'dns-01'
      dnsHook?: string
      keyType: 'ecdsa' | 'rsa'
      apiCaFile?: string
      chainCaFile?: string
      stateDir?: string
    }
  | {type: 'files'; cert: string; key: string; caFile?: string}
  | {type: 'self-signed'; stateDir?: string}

export interface TlsSettings {
  profile: 'intermediate' | 'modern'
  hsts: {enabled: boolean; maxAge: number; includeSubdomains: boolean; preload: boolean}
  source: TlsSource
}

export interface LbSettings {
  balance: 'roundrobin' | 'leastconn' | 'source' | 'first' | 'random'
  healthCheck: string
  reencrypt: boolean
  backendPort: number
}

export interface MonitoringSettings {
  enabled: boolean
  sources: string[]
  /** Where the hosted log service's URL is read from (a secret: it carries the service's token). */
  logService?: {url: SecretRef}
}

export interface AptSettings {
  proxy?: string
}

export type HardeningItem = 'ssh' | 'sysctl' | 'fail2ban' | 'unattended_upgrades' | 'permissions' | 'services' | 'policy' | 'audit_tools' | 'usb'

export interface HardeningSettings {
  /** Items switched off, with the reason. */
  skip: Partial<Record<HardeningItem, string>>
  allowUsers: string[]
  allowGroups: string[]
  /** Seconds before an unconfirmed sshd change reverts itself. */
  revertAfter: number
  /** sshd's MaxSessions. */
  maxSessions: number
  /** TMOUT for interactive shells, in seconds; 0: none. */
  shellTimeout: number
  thresholds: {sshAuditFail: number; sshAuditWarn: number; lynisMin: number}
}

export interface DbMembership {
  role: 'primary' | 'replica'
  /** Unique per database host: its position in the inventory's host list (stable across promotions). */
  serverId: number
}

/** A host with every setting resolved (host > role > top level > defaults). */
export interface Host {
  name: string
  address: string
  family: 4 | 6
  roles: Role[]
  ssh: SshSettings
  firewall: FirewallSettings
  tls: TlsSettings
  lb: LbSettings
  monitoring: MonitoringSettings
  apt: AptSettings
  hardening: HardeningSettings
  db?: DbMembership
}

export interface Site {
  domain: string
  aliases: string[]
  email: string
}

export interface MysqlSettings {
  engine: 'mariadb' | 'mysql'
  primary?: string
  replicas: string[]
  replicationUser: string
  replicationPassword?: SecretRef
  monitorPassword?: SecretRef
  port: number
}

export interface Inventory {
  /** The file it was read from (absolute). */
  file: string
  site: Site
  mysql?: MysqlSettings
  hosts: Host[]
}
