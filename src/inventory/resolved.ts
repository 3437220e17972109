import {isIP} from 'node:net'
import {homedir} from 'node:os'
import {dirname, isAbsolute, resolve} from 'node:path'
import * as z from 'zod'
import {SSH_DEFAULTS} from './defaults.js'
import type {SecretRef} from './primitives.js'
import {
  HARDENING_ITEMS,
  acmeChallenge,
  alertingSchema,
  anySourceService,
  appSchema,
  balance,
  dbEngine,
  firewallBackend,
  hostSchema,
  inventorySchema,
  keyType,
  mergedLayer,
  mysqlSchema,
  proto,
  rebootPolicy,
  role,
  upgradeOrigin,
  tlsProfile,
} from './schema.js'

/*
 * The resolved inventory: what the rest of foobar reads. Every setting is filled in (host > role > top level >
 * defaults) but ssh.user and ssh.port, which stay unset unless written (ssh_config may fill them in when
 * connecting), names are camelCase and local paths absolute. The types below are inferred from these schemas, and
 * inventoryResolver() is the one way from the merged (snake_case) layers to them: its output is parsed by
 * inventoryModel, so a transform that drifted from the model fails loudly instead of passing a wrong shape on.
 */

/** Where a secret is read from: a path is absolute once resolved. */
const secretModel = z.union([z.strictObject({env: z.string()}), z.strictObject({file: z.string()})])

export const portRuleModel = z.strictObject({
  port: z.int(),
  proto,
  /** Networks allowed; empty means anywhere. */
  from: z.array(z.string()),
  comment: z.string().optional(),
  /** Set when the rule deliberately widens a port foobar's own rules govern: why. */
  override: z.string().optional(),
})
export type PortRule = z.output<typeof portRuleModel>

export const sshModel = z.strictObject({
  /**
   * As written in the inventory (host > role > top level), undefined when no layer sets it: ssh_config's User and
   * Port then apply when connecting, else foobar's defaults (root, 22). Rendered configs read sshUser()/sshPort().
   */
  user: z.string().optional(),
  port: z.int().optional(),
  identityFile: z.string().optional(),
  sudo: z.boolean(),
  jumpHost: z.string().optional(),
  knownHosts: z.string().optional(),
  connectTimeout: z.int(),
})
export type SshSettings = z.output<typeof sshModel>

/**
 * The ssh user and port the host's own configuration is rendered for (the firewall's SSH rule, fail2ban's jail,
 * sshd's AllowUsers and PermitRootLogin, ssh-audit): the inventory's value, else foobar's default (root, 22).
 * ssh_config says how this machine reaches a host, not how the host is set up, so it never changes these; set
 * `ssh.user`/`ssh.port` in the inventory when the host's sshd differs from the defaults.
 */
export const sshUser = (host: Pick<Host, 'ssh'>): string => host.ssh.user ?? SSH_DEFAULTS.user
export const sshPort = (host: Pick<Host, 'ssh'>): number => host.ssh.port ?? SSH_DEFAULTS.port

export const firewallModel = z.strictObject({
  backend: firewallBackend,
  adminCidrs: z.array(z.string()),
  extraPorts: z.partialRecord(role, z.array(portRuleModel)),
  ipv6: z.boolean(),
  revertAfter: z.int(),
  allowControlAddress: z.boolean(),
  /** service -> why it may be reached from any address. */
  allowAnySource: z.partialRecord(anySourceService, z.string()),
})
export type FirewallSettings = z.output<typeof firewallModel>

export const tlsSourceModel = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('acme'),
    directory: z.string(),
    email: z.string(),
    challenge: acmeChallenge,
    dnsHook: z.string().optional(),
    keyType,
    apiCaFile: z.string().optional(),
    chainCaFile: z.string().optional(),
    stateDir: z.string().optional(),
  }),
  z.strictObject({type: z.literal('files'), cert: z.string(), key: z.string(), caFile: z.string().optional()}),
  z.strictObject({type: z.literal('self-signed'), stateDir: z.string().optional()}),
])
export type TlsSource = z.output<typeof tlsSourceModel>

export const tlsModel = z.strictObject({
  profile: tlsProfile,
  hsts: z.strictObject({enabled: z.boolean(), maxAge: z.int(), includeSubdomains: z.boolean(), preload: z.boolean()}),
  source: tlsSourceModel,
})
export type TlsSettings = z.output<typeof tlsModel>

export const lbModel = z.strictObject({
  balance,
  healthCheck: z.string(),
  reencrypt: z.boolean(),
  backendPort: z.int(),
  /** The floating address the load balancers share (keepalived); unset: none. */
  vip: z.string().optional(),
  /** Where the floating address lives; unset: the interface that holds the host's address (read on the host). */
  vipInterface: z.string().optional(),
  /** Set exactly when `vip` is: the VRRP exchange (defaults filled in). */
  vrrp: z.strictObject({routerId: z.int(), preempt: z.boolean(), password: secretModel.optional()}).optional(),
})
export type LbSettings = z.output<typeof lbModel>

export const monitoringModel = z.strictObject({
  enabled: z.boolean(),
  sources: z.array(z.string()),
  /** Where the hosted log service's URL is read from (a secret: it carries the service's token). */
  logService: z.strictObject({url: secretModel}).optional(),
})
export type MonitoringSettings = z.output<typeof monitoringModel>

export const aptModel = z.strictObject({
  proxy: z.string().optional(),
})
export type AptSettings = z.output<typeof aptModel>

export const hardeningItem = z.enum(HARDENING_ITEMS)
export type HardeningItem = z.output<typeof hardeningItem>

export const hardeningModel = z.strictObject({
  /** Items switched off, with the reason. */
  skip: z.partialRecord(hardeningItem, z.string()),
  allowUsers: z.array(z.string()),
  allowGroups: z.array(z.string()),
  /** Seconds before an unconfirmed sshd change reverts itself. */
  revertAfter: z.int(),
  /** sshd's MaxSessions. */
  maxSessions: z.int(),
  /** TMOUT for interactive shells, in seconds; 0: none. */
  shellTimeout: z.int(),
  thresholds: z.strictObject({sshAuditFail: z.int(), sshAuditWarn: z.int(), lynisMin: z.int()}),
})
export type HardeningSettings = z.output<typeof hardeningModel>

export const upgradesModel = z.strictObject({
  origins: z.array(upgradeOrigin),
  /** The first window's start, HH:MM on the host's clock. */
  start: z.string(),
  periodHours: z.int(),
  /** Unset: the period shared out among the slots (at most 60 minutes); see components/upgrades/windows.ts. */
  windowMinutes: z.int().optional(),
  reboot: rebootPolicy,
})
export type UpgradeSettings = z.output<typeof upgradesModel>

export const dbMembershipModel = z.strictObject({
  role: z.enum(['primary', 'replica']),
  /** Unique per database host: its position in the inventory's host list (stable across promotions). */
  serverId: z.int(),
})
export type DbMembership = z.output<typeof dbMembershipModel>

/** A host with every setting resolved (host > role > top level > defaults). */
export const hostModel = z.strictObject({
  name: z.string(),
  address: z.string(),
  family: z.literal([4, 6]),
  roles: z.array(role),
  ssh: sshModel,
  firewall: firewallModel,
  tls: tlsModel,
  lb: lbModel,
  /** Fixed answers nginx gives before the app (path prefix -> status). */
  nginx: z.strictObject({responses: z.array(z.strictObject({path: z.string(), status: z.number()}))}),
  monitoring: monitoringModel,
  apt: aptModel,
  hardening: hardeningModel,
  upgrades: upgradesModel,
  /** package -> pinned version (host > role > top level). */
  pins: z.record(z.string(), z.string()),
  db: dbMembershipModel.optional(),
})
export type Host = z.output<typeof hostModel>

export const siteModel = z.strictObject({
  domain: z.string(),
  aliases: z.array(z.string()),
  email: z.string(),
})
export type Site = z.output<typeof siteModel>

export const mysqlModel = z.strictObject({
  engine: dbEngine,
  topology: z.enum(['primary-replica', 'galera']),
  arbitrator: z.string().optional(),
  clusterName: z.string(),
  primary: z.string().optional(),
  replicas: z.array(z.string()),
  replicationUser: z.string(),
  replicationPassword: secretModel.optional(),
  monitorPassword: secretModel.optional(),
  port: z.int(),
  endpoint: z.strictObject({port: z.int(), checkPort: z.int(), metricsPort: z.int()}).optional(),
  semiSync: z.strictObject({enabled: z.boolean(), timeoutMs: z.int()}),
  /** The default app's database account: user, password (where it is read from), database. */
  app: z.strictObject({user: z.string(), password: secretModel, database: z.string()}).optional(),
})
export type MysqlSettings = z.output<typeof mysqlModel>

const forModel = z.strictObject({for: z.string()})
const fullnessModel = z.strictObject({percent: z.number(), for: z.string()})

/** Alerting on the monitoring host: rule thresholds and durations, Alertmanager's timings and receivers (defaults in). */
export const alertingModel = z.strictObject({
  enabled: z.boolean(),
  evaluationInterval: z.string(),
  rules: z.strictObject({
    hostDown: forModel,
    exporterDown: forModel,
    backendDown: forModel,
    http5xx: z.strictObject({ratio: z.number(), window: z.string(), for: z.string()}),
    qpsDrop: z.strictObject({nearZero: z.number(), serving: z.number(), window: z.string(), lookback: z.string(), for: z.string()}),
    replication: z.strictObject({maxLag: z.int(), for: z.string()}),
    writers: forModel,
    probeFailed: forModel,
    certExpiry: z.strictObject({days: z.int(), for: z.string()}),
    disk: fullnessModel,
    inodes: fullnessModel,
    memory: fullnessModel,
    systemdFailed: forModel,
    upgradeBroken: forModel,
  }),
  route: z.strictObject({groupWait: z.string(), groupInterval: z.string(), repeatInterval: z.string()}),
  receivers: z.strictObject({
    webhook: z.strictObject({url: z.string(), sendResolved: z.boolean()}).optional(),
    email: z
      .strictObject({
        to: z.array(z.string()),
        from: z.string(),
        smarthost: z.string(),
        username: z.string().optional(),
        password: secretModel.optional(),
        sendResolved: z.boolean(),
      })
      .optional(),
  }),
})
export type AlertingSettings = z.output<typeof alertingModel>

/**
 * The site's own app (the inventory's `app`): exactly one of `upstream` (host:port or unix:/path, as nginx's upstream
 * server takes it) or `root` (a directory nginx serves). Absent: the default app. Its health path is every host's
 * `lb.healthCheck` (app.health is that setting's default; the loader refuses the two written apart).
 */
export const appModel = z.strictObject({upstream: z.string().optional(), root: z.string().optional()})
export type AppSettings = z.output<typeof appModel>

export const inventoryModel = z.strictObject({
  /** The file it was read from (absolute). */
  file: z.string(),
  site: siteModel,
  /**
   * The certificate source, one for the whole inventory. It may be written per role or per host, but the loader
   * rejects an inventory whose hosts resolve to different sources, so this is every host's `tls.source`.
   */
  tlsSource: tlsSourceModel,
  mysql: mysqlModel.optional(),
  app: appModel.optional(),
  alerting: alertingModel,
  hosts: z.array(hostModel),
  /** What the loader let through but the user should see (e.g. a firewall source acknowledged as any address). */
  warnings: z.array(z.string()).optional(),
})
export type Inventory = z.output<typeof inventoryModel>

/* ---- From the merged layers to the model ---- */

/** A host as the loader hands it over: its own fields and its layers merged (see mergeLayers). */
export const mergedHost = hostSchema.pick({name: true, address: true, roles: true}).extend(mergedLayer.shape)

/** The inventory as the loader hands it over: validated, with each host's layers merged. */
export const mergedInventory = z.strictObject({
  site: inventorySchema.shape.site,
  mysql: mysqlSchema.optional(),
  app: appSchema.optional(),
  alerting: alertingSchema,
  hosts: z.array(mergedHost).min(1),
})

type Merged = z.output<typeof mergedHost>

export interface ResolveContext {
  /** The inventory file (absolute): relative paths are resolved next to it. */
  file: string
  /** The site's email, the ACME account's when tls.source does not name one. */
  siteEmail: string
}

/**
 * The schema that turns a mergedInventory into the Inventory: the merged (snake_case) layers are parsed, converted
 * and the result parsed again by inventoryModel. Made per inventory because local paths resolve relative to its
 * file; only the transform is new each time, the schemas it joins are built once. The agreement of inventory-wide
 * settings is checked by the loader, which knows the layer each value came from.
 */
export function inventoryResolver(ctx: ResolveContext) {
  const base = dirname(ctx.file)
  function local(p: string): string
  function local(p: string | undefined): string | undefined
  function local(p: string | undefined): string | undefined {
    return p === undefined ? undefined : expandPath(p, base)
  }
  const secret = (ref: SecretRef): SecretRef => ('file' in ref ? {file: local(ref.file)} : ref)

  const ssh = (s: Merged['ssh']): SshSettings => ({
    user: s.user,
    port: s.port,
    identityFile: local(s.identity_file),
    sudo: s.sudo,
    jumpHost: s.jump_host,
    knownHosts: local(s.known_hosts),
    connectTimeout: s.connect_timeout,
  })

  const tlsSource = (source: Merged['tls']['source']): TlsSource => {
    switch (source.type) {
      case 'acme':
        return {
          type: 'acme',
          directory: source.directory,
          email: source.email ?? ctx.siteEmail,
          challenge: source.challenge ?? 'http-01',
          dnsHook: local(source.dns_hook),
          keyType: source.key_type ?? 'ecdsa',
          apiCaFile: local(source.api_ca_file),
          chainCaFile: local(source.chain_ca_file),
          stateDir: local(source.state_dir),
        }
      case 'files':
        return {type: 'files', cert: local(source.cert), key: local(source.key), caFile: local(source.ca_file)}
      case 'self-signed':
        return {type: 'self-signed', stateDir: local(source.state_dir)}
    }
  }

  const tls = (t: Merged['tls']): TlsSettings => ({
    profile: t.profile,
    hsts: {enabled: t.hsts.enabled, maxAge: t.hsts.max_age, includeSubdomains: t.hsts.include_subdomains, preload: t.hsts.preload},
    source: tlsSource(t.source),
  })

  const lb = (l: Merged['lb']): LbSettings => ({
    balance: l.balance,
    healthCheck: l.health_check,
    reencrypt: l.reencrypt,
    backendPort: l.backend_port,
    ...(l.vip === undefined
      ? {}
      : {
          vip: l.vip,
          vipInterface: l.vip_interface,
          vrrp: {
            routerId: l.vrrp?.router_id ?? VRRP_DEFAULTS.routerId,
            preempt: l.vrrp?.preempt ?? VRRP_DEFAULTS.preempt,
            password: l.vrrp?.password && secret(l.vrrp.password),
          },
        }),
  })

  const monitoring = (m: Merged['monitoring']): MonitoringSettings => ({
    enabled: m.enabled,
    sources: m.sources,
    logService: m.log_service ? {url: secret(m.log_service.url)} : undefined,
  })

  const host = (h: Merged, db: DbMembership | undefined): Host => ({
    name: h.name,
    address: h.address,
    family: isIP(h.address) === 6 ? 6 : 4,
    roles: [...new Set(h.roles)].sort(),
    ssh: ssh(h.ssh),
    firewall: firewall(h.firewall),
    tls: tls(h.tls),
    lb: lb(h.lb),
    nginx: {responses: h.nginx.responses.map((r) => ({...r}))},
    monitoring: monitoring(h.monitoring),
    apt: {proxy: h.apt.proxy},
    hardening: hardening(h.hardening),
    upgrades: {
      origins: [...new Set(h.upgrades.origins)],
      start: h.upgrades.start,
      periodHours: h.upgrades.period_hours,
      windowMinutes: h.upgrades.window_minutes,
      reboot: h.upgrades.reboot,
    },
    pins: {...h.pins},
    db,
  })

  return mergedInventory
    .transform((inv): Inventory => {
      const mysql = inv.mysql
      const primary = Array.isArray(mysql?.primary) ? mysql.primary[0] : mysql?.primary
      // server_id follows the host's place in the inventory, not its role: a promotion must not renumber servers.
      // (Looked up by name once: a find per host was quadratic at thousands of hosts.)
      const place = new Map<string, number>()
      inv.hosts.forEach((h, i) => place.has(h.name) || place.set(h.name, i + 1))
      const serverId = (name: string) => place.get(name) ?? 0
      const replicas = new Set(mysql?.replicas)
      const db = (name: string): DbMembership | undefined => {
        if (replicas.has(name)) return {role: 'replica', serverId: serverId(name)}
        if (name === primary) return {role: 'primary', serverId: serverId(name)}
        return undefined
      }
      const hosts = inv.hosts.map((h) => host(h, db(h.name)))
      return {
        file: ctx.file,
        site: {domain: inv.site.domain, aliases: [...inv.site.aliases], email: inv.site.email},
        // Every host's (there is at least one): the loader rejects an inventory whose hosts disagree.
        tlsSource: hosts[0].tls.source,
        mysql: mysql && {
          engine: mysql.engine,
          topology: mysql.topology,
          arbitrator: mysql.arbitrator,
          clusterName: mysql.cluster_name,
          primary,
          replicas: mysql.replicas,
          replicationUser: mysql.replication_user,
          replicationPassword: mysql.replication_password && secret(mysql.replication_password),
          monitorPassword: mysql.monitor_password && secret(mysql.monitor_password),
          port: mysql.port,
          endpoint: mysql.endpoint && {
            port: mysql.endpoint.port,
            checkPort: mysql.endpoint.check_port,
            metricsPort: mysql.endpoint.metrics_port,
          },
          semiSync: {enabled: mysql.semi_sync.enabled, timeoutMs: mysql.semi_sync.timeout_ms},
          app: mysql.app && {user: mysql.app.user, password: secret(mysql.app.password), database: mysql.app.database},
        },
        app: inv.app && {upstream: inv.app.upstream, root: inv.app.root?.replace(/\/$/, '')},
        alerting: alerting(inv.alerting, secret),
        hosts,
      }
    })
    .pipe(inventoryModel)
}

const firewall = (f: Merged['firewall']): FirewallSettings => ({
  backend: f.backend,
  adminCidrs: f.admin_cidrs ?? [],
  extraPorts: Object.fromEntries(
    Object.entries(f.extra_ports).map(([r, rules]) => [
      r,
      (rules ?? []).map((x) => ({port: x.port, proto: x.proto ?? 'tcp', from: x.from ?? [], comment: x.comment, override: x.override})),
    ]),
  ),
  ipv6: f.ipv6,
  revertAfter: f.revert_after,
  allowControlAddress: f.allow_control_address,
  allowAnySource: {...f.allow_any_source},
})

/** VRRP's defaults: router id 51 (keepalived's own example), non-preemptive. */
export const VRRP_DEFAULTS = {routerId: 51, preempt: false} as const

const hardening = (h: Merged['hardening']): HardeningSettings => ({
  skip: {...h.skip},
  allowUsers: [...h.allow_users],
  allowGroups: [...h.allow_groups],
  revertAfter: h.revert_after,
  maxSessions: h.max_sessions,
  shellTimeout: h.shell_timeout,
  thresholds: {sshAuditFail: h.thresholds.ssh_audit_fail, sshAuditWarn: h.thresholds.ssh_audit_warn, lynisMin: h.thresholds.lynis_min},
})

function alerting(a: z.output<typeof alertingSchema>, secret: (ref: SecretRef) => SecretRef): AlertingSettings {
  const r = a.rules
  const {webhook, email} = a.receivers
  return {
    enabled: a.enabled,
    evaluationInterval: a.evaluation_interval,
    rules: {
      hostDown: r.host_down,
      exporterDown: r.exporter_down,
      backendDown: r.backend_down,
      http5xx: r.http_5xx,
      qpsDrop: {
        nearZero: r.qps_drop.near_zero,
        serving: r.qps_drop.serving,
        window: r.qps_drop.window,
        lookback: r.qps_drop.lookback,
        for: r.qps_drop.for,
      },
      replication: {maxLag: r.replication.max_lag, for: r.replication.for},
      writers: r.writers,
      probeFailed: r.probe_failed,
      certExpiry: r.cert_expiry,
      disk: r.disk,
      inodes: r.inodes,
      memory: r.memory,
      systemdFailed: r.systemd_failed,
      upgradeBroken: r.upgrade_broken,
    },
    route: {groupWait: a.route.group_wait, groupInterval: a.route.group_interval, repeatInterval: a.route.repeat_interval},
    receivers: {
      webhook: webhook && {url: webhook.url, sendResolved: webhook.send_resolved},
      email: email && {
        to: [...email.to],
        from: email.from,
        smarthost: email.smarthost,
        username: email.username,
        password: email.password && secret(email.password),
        sendResolved: email.send_resolved,
      },
    },
  }
}

/** `~/x` -> home, relative -> next to the inventory file. */
export function expandPath(p: string, base: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2))
  return isAbsolute(p) ? p : resolve(base, p)
}
