import {z} from 'zod'
import {cidr, dnsName, email, hostName, httpUrl, ipAddress, localPath, port, secretRef, urlPath} from './primitives.js'

export const ROLES = ['lb', 'web', 'db', 'monitoring'] as const
export const role = z.enum(ROLES)
export type Role = z.infer<typeof role>

/* The choices of the enumerated settings, shared with the resolved model (resolved.ts). */
export const proto = z.enum(['tcp', 'udp'])
export const firewallBackend = z.enum(['ufw', 'iptables'])
export const tlsProfile = z.enum(['intermediate', 'modern'])
export const acmeChallenge = z.enum(['http-01', 'dns-01'])
export const keyType = z.enum(['ecdsa', 'rsa'])
export const balance = z.enum(['roundrobin', 'leastconn', 'source', 'first', 'random'])
export const dbEngine = z.enum(['mariadb', 'mysql'])

/*
 * Settings come in layers: defaults <- top level <- role (`roles.<role>`) <- host. Every field of a layer is
 * optional, so each layer is validated where it is written (errors point at the right line); the merged result
 * is complete because defaults.ts fills every field.
 */

/** Why a safe default is set aside (a hardening item skipped, a firewall rule widened): shown in plans and verify. */
const reason = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 .,:()/_+-]{2,199}$/, {
  error: 'must be the reason: 3-200 letters, digits, spaces and . , : ( ) / _ + -',
})

const portRule = z.strictObject({
  port,
  proto: proto.optional(),
  from: z.array(cidr).optional(),
  comment: z
    .string()
    .regex(/^[A-Za-z0-9 ._-]{0,60}$/, {error: 'must be letters, digits, spaces and . _ - (max 60)'})
    .optional(),
  /**
   * A port that foobar's own rules already govern on the host (SSH, the database, exporters, ...) is widened by an
   * extra port only with this: the reason it is deliberate (the loader refuses the entry without it).
   */
  override: reason.optional(),
})

/** What may be opened to any address (0.0.0.0/0, ::/0) only with an acknowledgement (`firewall.allow_any_source`). */
export const ANY_SOURCE_SERVICES = ['ssh', 'database', 'exporters'] as const
export const anySourceService = z.enum(ANY_SOURCE_SERVICES)

const sshLayer = z.strictObject({
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, {error: 'must be a Unix user name'})
    .optional(),
  port: port.optional(),
  identity_file: localPath.optional(),
  sudo: z.boolean().optional(),
  jump_host: z
    .string()
    .regex(/^(?:[a-z_][a-z0-9_-]{0,31}@)?[A-Za-z0-9.:-]+(?::\d{1,5})?$/, {error: 'must be [user@]host[:port]'})
    .optional(),
  known_hosts: localPath.optional(),
  connect_timeout: z.int().min(1).max(300).optional(),
})

const firewallLayer = z.strictObject({
  backend: firewallBackend.optional(),
  admin_cidrs: z.array(cidr).min(1, {error: 'must list at least one network allowed to reach SSH'}).optional(),
  extra_ports: z.partialRecord(role, z.array(portRule)).optional(),
  ipv6: z.boolean().optional(),
  revert_after: z.int().min(30).max(3600).optional(),
  /** Also allow SSH from the address foobar connects from (default true). Off for ephemeral CI runners. */
  allow_control_address: z.boolean().optional(),
  /** service -> why it may be reached from any address (0.0.0.0/0, ::/0): without it such a source is an error. */
  allow_any_source: z.partialRecord(anySourceService, reason).optional(),
})

const hstsLayer = z.strictObject({
  enabled: z.boolean().optional(),
  max_age: z
    .int()
    .min(0)
    .max(63072000 * 2)
    .optional(),
  include_subdomains: z.boolean().optional(),
  preload: z.boolean().optional(),
})

const tlsSource = z.discriminatedUnion(
  'type',
  [
    z.strictObject({
      type: z.literal('acme'),
      directory: httpUrl,
      email: email.optional(),
      challenge: acmeChallenge.optional(),
      dns_hook: localPath.optional(),
      key_type: keyType.optional(),
      /** CA bundle to trust for the ACME directory's own API (pebble, a private CA). */
      api_ca_file: localPath.optional(),
      /** CA bundle that verifies the issued chain (backends' certificates, for HAProxy's re-encryption). */
      chain_ca_file: localPath.optional(),
      state_dir: localPath.optional(),
    }),
    z.strictObject({type: z.literal('files'), cert: localPath, key: localPath, ca_file: localPath.optional()}),
    z.strictObject({type: z.literal('self-signed'), state_dir: localPath.optional()}),
  ],
  {error: 'must have type: acme, files or self-signed'},
)

const tlsLayer = z.strictObject({
  profile: tlsProfile.optional(),
  hsts: hstsLayer.optional(),
  /** One for the whole inventory: it may be written in any layer, but every host must resolve to the same (loader). */
  source: tlsSource.optional(),
})

/** A Linux network interface name (at most 15 characters). */
const interfaceName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/, {
  error: 'must be a network interface name such as eth0 (letters, digits, _ . -; at most 15 characters)',
})

/** The VRRP exchange of the load balancers sharing lb.vip (keepalived). */
const vrrpLayer = z.strictObject({
  /** VRRP's virtual router id: unique among the VRRP routers on the network segment. */
  router_id: z
    .int({error: 'must be a whole number'})
    .min(1, {error: 'must be from 1 to 255'})
    .max(255, {error: 'must be from 1 to 255'})
    .optional(),
  /** false (default): the address stays where it is when a load balancer comes back; true: it returns to the first. */
  preempt: z.boolean().optional(),
  /** VRRPv2's PASS authentication (at most 8 characters): a secret reference, never the secret itself. */
  password: secretRef.optional(),
})

const lbLayer = z.strictObject({
  balance: balance.optional(),
  health_check: urlPath.optional(),
  reencrypt: z.boolean().optional(),
  backend_port: port.optional(),
  /** A floating address the load balancers share (keepalived moves it to a healthy one); unset: no keepalived. */
  vip: ipAddress.optional(),
  /** The interface the floating address lives on; default: the one that holds the host's address (read on the host). */
  vip_interface: interfaceName.optional(),
  vrrp: vrrpLayer.optional(),
})

const monitoringLayer = z.strictObject({
  enabled: z.boolean().optional(),
  /** Networks allowed to scrape the exporters (besides the monitoring host). */
  sources: z.array(cidr).optional(),
  /** A hosted log service (e.g. a Sumo Logic HTTP source): its URL is a credential, so only a reference. */
  log_service: z.strictObject({url: secretRef}).optional(),
})

/** Hardening items that an inventory may switch off, each with the reason (verify reports it as skipped). */
export const HARDENING_ITEMS = [
  'ssh',
  'sysctl',
  'fail2ban',
  'unattended_upgrades',
  'permissions',
  'services',
  'policy',
  'audit_tools',
  'usb',
] as const

const unixName = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, {error: 'must be a Unix user or group name'})
const skipReason = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 .,:()/_+-]{2,199}$/, {
  error: 'must be the reason for switching it off: 3-200 letters, digits, spaces and . , : ( ) / _ + -',
})

const thresholdsLayer = z.strictObject({
  ssh_audit_fail: z.int().min(0).max(100).optional(),
  ssh_audit_warn: z.int().min(0).max(100).optional(),
  lynis_min: z.int().min(0).max(100).optional(),
})

const hardeningLayer = z.strictObject({
  /** item -> why it is off. The only way to switch an item off, so a reason always comes with it. */
  skip: z.partialRecord(z.enum(HARDENING_ITEMS), skipReason).optional(),
  /** Extra users and groups allowed to log in over SSH (the ssh user is always allowed). */
  allow_users: z.array(unixName).optional(),
  allow_groups: z.array(unixName).optional(),
  revert_after: z.int().min(30).max(3600).optional(),
  /** sshd's MaxSessions (channels per connection); foobar itself never opens more than 2 on one connection. */
  max_sessions: z.int().min(2, {error: 'must be at least 2: foobar runs two commands at a time on one connection'}).max(100).optional(),
  /** Idle interactive shells end after this many seconds (TMOUT); 0: never. */
  shell_timeout: z.int().min(0).max(86400).optional(),
  thresholds: thresholdsLayer.optional(),
})

const aptLayer = z.strictObject({
  proxy: httpUrl.optional(),
})

export const layerShape = {
  ssh: sshLayer.optional(),
  firewall: firewallLayer.optional(),
  tls: tlsLayer.optional(),
  lb: lbLayer.optional(),
  monitoring: monitoringLayer.optional(),
  apt: aptLayer.optional(),
  hardening: hardeningLayer.optional(),
}
export const layer = z.strictObject(layerShape)
export type Layer = z.infer<typeof layer>

/**
 * The layers merged (defaults <- top level <- roles <- host, see mergeLayers): the same fields, each still checked
 * as where it was written, and every field that defaults.ts fills is required from here on.
 */
export const mergedLayer = z.strictObject({
  ssh: sshLayer.required({sudo: true, connect_timeout: true}),
  firewall: firewallLayer.required({
    backend: true,
    extra_ports: true,
    ipv6: true,
    revert_after: true,
    allow_control_address: true,
    allow_any_source: true,
  }),
  tls: tlsLayer.extend({hsts: hstsLayer.required(), source: tlsSource}).required({profile: true}),
  lb: lbLayer.required({balance: true, health_check: true, reencrypt: true, backend_port: true}),
  monitoring: monitoringLayer.required({enabled: true, sources: true}),
  apt: aptLayer,
  hardening: hardeningLayer.extend({thresholds: thresholdsLayer.required()}).required(),
})

export const hostSchema = z.strictObject({
  name: hostName,
  address: ipAddress,
  roles: z.array(role, {error: 'must be a list of roles: lb, web, db, monitoring'}).min(1, {error: 'must name at least one role'}),
  ...layerShape,
})

/** The default app's database account (src/components/app-db): a MySQL user name, a database that is not the server's own. */
const mysqlUserName = z.string().regex(/^[a-z_][a-z0-9_]{0,31}$/, {error: 'must be a MySQL user name (a-z, 0-9, _)'})
const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys', 'foobar_health']
const appDatabase = z.strictObject({
  user: mysqlUserName
    .refine((u) => !['root', 'mysql', 'prometheus'].includes(u), {error: "must be the app's own user, not root, mysql or prometheus"})
    .default('foobar_app'),
  // Required: without it the loader says so by name ("is required"), not only that a reference is malformed.
  password: z.union(secretRef.options, {
    error: (issue) =>
      issue.input === undefined
        ? 'is required: a secret reference, {env: NAME} or {file: PATH}'
        : 'must be a secret reference: {env: NAME} or {file: PATH} (never the secret itself)',
  }),
  database: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,63}$/, {error: 'must be a database name: a-z, 0-9, _ (at most 64, not starting with a digit)'})
    .refine((d) => !SYSTEM_SCHEMAS.includes(d), {error: `must not be one of the server's own: ${SYSTEM_SCHEMAS.join(', ')}`})
    .default('foobar_app'),
})

export const mysqlSchema = z.strictObject({
  engine: dbEngine.default('mariadb'),
  // A list is accepted here only so that two primaries get their own clear error (one writer only).
  primary: z.union([hostName, z.array(hostName)], {error: 'must be the name of one host'}).optional(),
  replicas: z.array(hostName).default([]),
  replication_user: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,31}$/, {error: 'must be a MySQL user name (a-z, 0-9, _)'})
    .default('repl'),
  replication_password: secretRef.optional(),
  monitor_password: secretRef.optional(),
  port: port.default(3306),
  /**
   * A database endpoint on every web server that always leads to the writer (src/components/db-endpoint); on
   * when present. `port`: where the app connects (127.0.0.1); `check_port`: the writer check on database hosts;
   * `metrics_port`: the endpoint's Prometheus metrics on the web server's private address.
   */
  endpoint: z.strictObject({port: port.default(3306), check_port: port.default(9200), metrics_port: port.default(8406)}).optional(),
  /**
   * Semi-synchronous replication (MariaDB's built-in): a commit is acknowledged once a replica has it; after
   * `timeout_ms` without a replica's answer the primary falls back to asynchronous (db status says so).
   */
  semi_sync: z
    .strictObject({
      enabled: z.boolean().default(true),
      timeout_ms: z.int().min(100, {error: 'must be at least 100 (milliseconds)'}).max(3_600_000).default(10_000),
    })
    .default({enabled: true, timeout_ms: 10_000}),
  /** The default app's notes database and least-privilege account on the primary; on when present. */
  app: appDatabase.optional(),
})

export const inventorySchema = z.strictObject({
  site: z.strictObject({
    domain: dnsName,
    aliases: z.array(dnsName).default([]),
    email,
  }),
  ...layerShape,
  mysql: mysqlSchema.optional(),
  roles: z.partialRecord(role, layer).optional(),
  hosts: z.array(hostSchema).min(1, {error: 'must list at least one host'}),
})
export type InventoryFile = z.infer<typeof inventorySchema>
