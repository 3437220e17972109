import {isIP} from 'node:net'
import * as z from 'zod'
import {cidr, dnsName, email, healthPath, hostName, httpUrl, ipAddress, localPath, port, secretRef, urlPath} from './primitives.js'

// An inventory is parsed once a run: compiling zod's fast path for each object schema (new Function, then V8's
// compile) costs more than the one parse it speeds up (about 12 % of `inventory check`'s CPU, measured; issue 20).
z.config({jitless: true})

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
  health_check: healthPath.optional(),
  reencrypt: z.boolean().optional(),
  backend_port: port.optional(),
  /** A floating address the load balancers share (keepalived moves it to a healthy one); unset: no keepalived. */
  vip: ipAddress.optional(),
  /** The interface the floating address lives on; default: the one that holds the host's address (read on the host). */
  vip_interface: interfaceName.optional(),
  vrrp: vrrpLayer.optional(),
})

/**
 * A fixed answer nginx gives itself on the site's HTTPS server, before the app: a retired path (410), one blocked for
 * scanners (403), a part of the site in maintenance (503). A prefix (`location ^~ PATH`); never `/` itself.
 */
const fixedResponse = z.strictObject({
  path: urlPath
    .refine((p) => p !== '/', {error: 'must not be / (that would answer for the whole site)'})
    .refine((p) => !p.startsWith('/.foobar-'), {error: "must not start with /.foobar- (foobar's own paths)"}),
  status: z
    .int({error: 'must be an HTTP status code such as 410'})
    .min(200, {error: 'must be an HTTP status code from 200 to 599'})
    .max(599, {error: 'must be an HTTP status code from 200 to 599'}),
})

const nginxLayer = z.strictObject({
  responses: z
    .array(fixedResponse)
    .refine((list) => new Set(list.map((r) => r.path)).size === list.length, {
      error: 'names a path twice',
    })
    .optional(),
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

/**
 * Where unattended-upgrades takes upgrades from: `security` (Debian's security archive, the default), `updates`
 * (stable-updates), `stable` (point releases).
 */
export const upgradeOrigin = z.enum(['security', 'updates', 'stable'])
/** After an upgrade that asks for a reboot: `never` (the operator reboots), `if-required` (at once, inside the window). */
export const rebootPolicy = z.enum(['never', 'if-required'])

/**
 * Automatic upgrades (the hardening item unattended_upgrades): each host upgrades in its own window, spread over
 * `period_hours` from `start` (the host's clock); hosts that share a role never upgrade at the same time.
 */
const upgradesLayer = z.strictObject({
  origins: z
    .array(upgradeOrigin, {error: 'must be a list of: security, updates, stable'})
    .min(1, {error: 'must name at least one origin'})
    .optional(),
  start: z
    .string()
    .regex(/^(?:[01][0-9]|2[0-3]):[0-5][0-9]$/, {error: 'must be a time of day, HH:MM (24 h)'})
    .optional(),
  period_hours: z
    .int({error: 'must be a whole number of hours'})
    .min(1, {error: 'must be from 1 to 24 (hours)'})
    .max(24, {error: 'must be from 1 to 24 (hours)'})
    .optional(),
  /** How long each host's window lasts; unset: the period shared out (at most 60). */
  window_minutes: z
    .int({error: 'must be a whole number of minutes'})
    .min(10, {error: 'must be at least 10 (minutes)'})
    .max(1440)
    .optional(),
  reboot: rebootPolicy.optional(),
})

/**
 * A Debian package name (policy 5.6.1: lowercase letters, digits, + - . ; at least two characters, starting with a
 * letter or digit). No globs or regular expressions: a pin names one package.
 */
export const packageName = z.string().regex(/^[a-z0-9][a-z0-9+.-]{1,99}$/, {
  error: 'must be a Debian package name (lowercase letters, digits, + - . ; no patterns)',
})
/**
 * A Debian version (policy 5.6.12): [epoch:]upstream[-revision]; the upstream part starts with a digit. Only the
 * characters the policy allows, so it is safe in apt's preferences file and on apt-get's command line.
 */
export const packageVersion = z
  .string()
  .regex(/^(?:[0-9]{1,9}:)?[0-9][A-Za-z0-9.+~]*(?:-[A-Za-z0-9.+~-]*[A-Za-z0-9.+~])?$/, {
    error: 'must be a Debian version: [epoch:]upstream[-revision], letters, digits and . + ~ - (e.g. 1.22.1-9+deb12u1)',
  })
  .max(100, {error: 'must be at most 100 characters'})

/** package -> version; a bad package name is reported at its key, by name. */
const pins = z.record(z.string(), packageVersion).superRefine((rec, ctx) => {
  for (const key of Object.keys(rec)) {
    if (!packageName.safeParse(key).success) {
      ctx.addIssue({code: 'custom', path: [key], message: 'must be a Debian package name (lowercase letters, digits, + - . ; no patterns)'})
    }
  }
})

export const layerShape = {
  ssh: sshLayer.optional(),
  firewall: firewallLayer.optional(),
  tls: tlsLayer.optional(),
  lb: lbLayer.optional(),
  nginx: nginxLayer.optional(),
  monitoring: monitoringLayer.optional(),
  apt: aptLayer.optional(),
  hardening: hardeningLayer.optional(),
  upgrades: upgradesLayer.optional(),
  /** package -> the version it is held at (apt preferences, priority 1001: downgrades too); host > role > top level. */
  pins: pins.optional(),
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
  nginx: nginxLayer.required({responses: true}),
  monitoring: monitoringLayer.required({enabled: true, sources: true}),
  apt: aptLayer,
  hardening: hardeningLayer.extend({thresholds: thresholdsLayer.required()}).required(),
  upgrades: upgradesLayer.required({origins: true, start: true, period_hours: true, reboot: true}),
  pins,
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
  /**
   * `primary-replica` (default): one writer, GTID replicas, fencing. `galera`: a MariaDB Galera cluster, every member
   * takes writes (`primary` is the one the endpoint prefers, then the replicas in their order); quorum fences.
   */
  topology: z.enum(['primary-replica', 'galera'], {error: 'must be primary-replica or galera'}).default('primary-replica'),
  /** galera: a host without the db role that runs the Galera arbitrator (garbd): two members plus it keep quorum. */
  arbitrator: hostName.optional(),
  /** galera: the cluster's name (wsrep_cluster_name); the same on every member and the arbitrator. */
  cluster_name: z
    .string()
    .regex(/^[a-z][a-z0-9_-]{0,31}$/, {error: 'must be a-z, 0-9, _ or - (at most 32, starting with a letter)'})
    .default('foobar'),
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

/*
 * The site's own app on the web servers (issue 21): nginx proxies to `upstream` or serves the static `root`; the
 * default app (src/components/app) runs only when the inventory names none. Both values are written into nginx's
 * site config, so each is held to a whitelist here: no spaces, `;`, braces, quotes, `$`, `#` or control characters.
 */

/** Directories nginx must never serve to the world: the system's own, foobar's state (backups hold private keys). */
export const FORBIDDEN_ROOTS = ['/etc', '/root', '/proc', '/sys', '/dev', '/boot', '/run', '/tmp', '/var/lib', '/var/log', '/var/backups']

/** One path segment: letters, digits and . _ - + @ (not `.` or `..`). */
const SEGMENT = /^[A-Za-z0-9._@+-]+$/
const absolutePathProblem = (p: string): string | undefined => {
  if (!p.startsWith('/')) return 'must be an absolute path'
  const segments = p.replace(/\/$/, '').split('/').slice(1)
  if (segments.some((x) => x === '')) return 'must be an absolute path without empty segments (//)'
  if (segments.some((x) => !SEGMENT.test(x))) return 'must be a path of letters, digits and . _ - + @ (no spaces, quotes or ; { } $ #)'
  if (segments.some((x) => x === '.' || x === '..')) return 'must not contain . or .. segments'
  return undefined
}

/** A host name the web servers resolve (one label or more: app, app.internal): lowercase letters, digits, hyphens. */
const UPSTREAM_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/
/** The longest unix socket path Linux takes (sun_path is 108 bytes with the terminating NUL). */
const MAX_SOCKET_PATH = 107

/** Why a value cannot be the app's upstream, or undefined when it can. */
export function upstreamProblem(value: string): string | undefined {
  const usage = 'must be host:port (127.0.0.1:8080, [::1]:8080, app.internal:8080) or unix:/absolute/path.sock'
  if (value.startsWith('unix:')) {
    const path = value.slice('unix:'.length)
    const problem = absolutePathProblem(path)
    if (problem) return `${usage}: the socket path ${problem}`
    if (path.endsWith('/')) return `${usage}: the socket path names a directory`
    if (path.length > MAX_SOCKET_PATH) return `${usage}: the socket path is longer than ${MAX_SOCKET_PATH} characters (Linux's limit)`
    return undefined
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})$/.exec(value)
  if (!m) return usage
  const [, v6, name, portText] = m
  const p = Number(portText)
  if (!/^[1-9]/.test(portText!) || p < 1 || p > 65535) return `${usage}: the port must be from 1 to 65535`
  if (v6 !== undefined) {
    if (isIP(v6) !== 6) return `${usage}: [${v6}] is not an IPv6 address`
    if (/^[0:]+$/.test(v6)) return `${usage}: [${v6}] is the unspecified address, not a destination`
    return undefined
  }
  if (isIP(name!) === 4) return name === '0.0.0.0' ? `${usage}: 0.0.0.0 is the unspecified address, not a destination` : undefined
  if (/^[0-9.]+$/.test(name!)) return `${usage}: ${name} is not an IPv4 address`
  return UPSTREAM_NAME.test(name!) ? undefined : `${usage}: the host must be an IP address or a DNS name (lowercase)`
}

/** Why a directory cannot be the app's document root, or undefined when it can. */
export function docRootProblem(value: string): string | undefined {
  const problem = absolutePathProblem(value)
  if (problem) return `${problem} (the directory nginx serves, such as /srv/www/site)`
  const dir = value.replace(/\/$/, '')
  if (dir === '') return "is / (the whole file system): give the site's own directory, such as /srv/www/site"
  const under = FORBIDDEN_ROOTS.find((f) => dir === f || dir.startsWith(`${f}/`))
  if (under)
    return `is ${dir === under ? '' : 'under '}${under}: nginx would serve it to anyone; give the site's own directory, such as /srv/www/site`
  return undefined
}

const checked = (problem: (v: string) => string | undefined) =>
  z.string().check((ctx) => {
    const p = problem(ctx.value)
    if (p) ctx.issues.push({code: 'custom', message: p, input: ctx.value})
  })

export const appSchema = z
  .strictObject({
    /** Where nginx proxies to: host:port or unix:/path. */
    upstream: checked(upstreamProblem).optional(),
    /** A static document root nginx serves itself. */
    root: checked(docRootProblem).optional(),
    /** The app's own health path: the load balancer's check, the health gate and verify ask it (default /). */
    health: healthPath.optional(),
  })
  .check((ctx) => {
    const {upstream, root} = ctx.value
    if ((upstream === undefined) === (root === undefined))
      ctx.issues.push({
        code: 'custom',
        message: `must name exactly one of upstream (host:port or unix:/path) or root (a directory to serve)${upstream === undefined ? '' : ', not both'}; without an app section the default app runs`,
        input: ctx.value,
      })
  })

/** A Prometheus/Alertmanager duration: a number and one unit (ms, s, m, h, d). */
export const duration = z.string().regex(/^(0|[1-9]\d{0,5})(ms|s|m|h|d)$/, {
  error: 'must be a duration: a whole number and one unit, such as 30s, 5m, 1h (ms, s, m, h, d)',
})
const percent = z.number({error: 'must be a number'}).gt(0, {error: 'must be above 0'}).lt(100, {error: 'must be below 100'})
const forOnly = (d: string) => z.strictObject({for: duration.default(d)}).prefault({})
const fullness = z.strictObject({percent: percent.default(90), for: duration.default('10m')}).prefault({})

/** host:port of an SMTP relay (Alertmanager's smarthost): a DNS name or an IP address, and the port. */
const smarthost = z.string().check((ctx) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([a-z0-9.-]+)):(\d{1,5})$/.exec(ctx.value)
  const name = m?.[2]
  const okHost = m !== null && (m[1] !== undefined ? isIP(m[1]) === 6 : isIP(name!) === 4 || DNS_HOST.test(name!))
  const p = Number(m?.[3])
  if (!okHost || !(p >= 1 && p <= 65535))
    ctx.issues.push({
      code: 'custom',
      message: 'must be host:port of the SMTP relay, such as smtp.example.com:587 or [2001:db8::25]:587',
      input: ctx.value,
    })
})
const DNS_HOST = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/

/**
 * Alerting on the monitoring host (src/components/alerting): Prometheus's alert rules with their thresholds and
 * durations, Alertmanager's receivers and timings, the blackbox exporter's probes. One for the inventory (there is one
 * monitoring host), so a top-level section and not a layer; every field has a default.
 */
export const alertingSchema = z.strictObject({
  /** Off: no rules, Alertmanager or probes on the monitoring host (Prometheus and the collector stay). */
  enabled: z.boolean().default(true),
  /** How often Prometheus evaluates the rules. */
  evaluation_interval: duration.default('15s'),
  rules: z
    .strictObject({
      host_down: forOnly('1m'),
      exporter_down: forOnly('2m'),
      backend_down: forOnly('1m'),
      http_5xx: z
        .strictObject({ratio: z.number().gt(0).lt(1).default(0.05), window: duration.default('5m'), for: duration.default('5m')})
        .prefault({}),
      /** Requests per second at the LB below `near_zero` now, after being above `serving` within `lookback`. */
      qps_drop: z
        .strictObject({
          near_zero: z.number().min(0).default(0.1),
          serving: z.number().gt(0).default(1),
          window: duration.default('5m'),
          lookback: duration.default('1h'),
          for: duration.default('5m'),
        })
        .prefault({}),
      replication: z.strictObject({max_lag: z.int().min(1).max(86400).default(300), for: duration.default('2m')}).prefault({}),
      writers: forOnly('1m'),
      probe_failed: forOnly('2m'),
      cert_expiry: z.strictObject({days: z.int().min(1).max(365).default(14), for: duration.default('10m')}).prefault({}),
      disk: fullness,
      inodes: fullness,
      memory: fullness,
      systemd_failed: forOnly('5m'),
      upgrade_broken: forOnly('1m'),
    })
    .prefault({}),
  /** Alertmanager's notification timings (its root route). */
  route: z
    .strictObject({group_wait: duration.default('30s'), group_interval: duration.default('5m'), repeat_interval: duration.default('4h')})
    .prefault({}),
  receivers: z
    .strictObject({
      webhook: z.strictObject({url: httpUrl, send_resolved: z.boolean().default(true)}).optional(),
      /** E-mail over SMTP with STARTTLS (required); the password is a secret reference. */
      email: z
        .strictObject({
          to: z.array(email).min(1, {error: 'must list at least one address'}),
          from: email,
          smarthost,
          username: z
            .string()
            .regex(/^[A-Za-z0-9._%+@-]{1,128}$/, {error: 'must be an SMTP user name: letters, digits and . _ % + @ - (max 128)'})
            .optional(),
          password: secretRef.optional(),
          send_resolved: z.boolean().default(false),
        })
        .refine((e) => (e.username === undefined) === (e.password === undefined), {error: 'username and password go together'})
        .optional(),
    })
    .prefault({}),
})

export const inventorySchema = z.strictObject({
  site: z.strictObject({
    domain: dnsName,
    aliases: z.array(dnsName).default([]),
    email,
  }),
  ...layerShape,
  mysql: mysqlSchema.optional(),
  /** The site's own app; omitted: the default app. */
  app: appSchema.optional(),
  alerting: alertingSchema.prefault({}),
  roles: z.partialRecord(role, layer).optional(),
  hosts: z.array(hostSchema).min(1, {error: 'must list at least one host'}),
})
export type InventoryFile = z.infer<typeof inventorySchema>
