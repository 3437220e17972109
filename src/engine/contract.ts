import type {Host, Inventory} from '../inventory/index.js'
import type {SecretRef} from '../inventory/primitives.js'
import type {Runner} from '../remote/runner.js'

/*
 * The component contract: everything a component wants on a host, and everything the engine needs to know to
 * plan, apply, order, roll and verify it. The engine iterates over components and never names one; a component
 * lives in its own folder under src/components/ and is registered by one line in src/components/index.ts.
 */

/** A file as it must be on the host. */
export interface DesiredFile {
  path: string
  content: string
  mode: number
  owner: string
  group: string
  /** Secret content: never shown in diffs or output. */
  secret?: boolean
  /** Services (or a live step's pseudo-service) to reload when this file changes. */
  notify?: string[]
  /**
   * The daemon's own checker. `candidate`: run on the temp file (`{}` is replaced by its path) before it is moved
   * into place. `config`: the checker reads the whole config, so it runs with the file in place and the previous
   * file is put back if it fails.
   */
  validate?: {mode: 'candidate' | 'config'; command: string}
  /**
   * Written before the package transaction (systemd told of it): a unit's drop-in that must be in place when the
   * package's maintainer scripts start the unit. Only for files that need nothing the packages bring.
   */
  beforePackages?: boolean
  /** The component that wants it (filled in by the engine). */
  component?: string
}

export interface ServiceSpec {
  name: string
  /** How to apply a config change: `reload` where the daemon supports it (hitless), else `restart`. */
  onChange: 'reload' | 'restart'
  /** A shell snippet that exits 0 when the service really works (not just "active"). */
  health?: string
  /** Left alone in a container (plan, apply and verify), for this reason: e.g. a daemon of the host machine's hardware. */
  notInContainer?: string
  /** The component that runs it (filled in by the engine). */
  component?: string
}

/**
 * A file present only while a package transaction that installs `package` runs (Debian's policy-rc.d pattern): it
 * steers that package's maintainer scripts, e.g. keeps minutes of postinst work out of the transaction so the
 * component can do it later. Written only where no file is at `path` (an operator's own file is left alone, and
 * the maintainer script then does what it always does), removed when the transaction ends, however it ends.
 */
export interface InstallGuard {
  package: string
  path: string
  content: string
  /** Default 0644 (a program such as policy-rc.d: 0755). */
  mode?: number
  /** What plan says it is for, in place of "for PACKAGE". */
  note?: string
}

/** Everything one component wants on one host. */
export interface ComponentState {
  /** Files present only during the package transaction that installs their package. */
  installGuards?: InstallGuard[]
  packages: string[]
  /** Packages held at a version (installed as `name=version`, downgrades included); each is also in `packages`. */
  versions?: Record<string, string>
  files: DesiredFile[]
  /** Files that must not exist (e.g. a distribution default that would conflict). */
  absent: string[]
  services: ServiceSpec[]
}

/**
 * IP protocols a firewall rule can admit: tcp and udp by port; the others whole, from the rule's sources (vrrp is
 * IP protocol 112, the load balancers' floating-address exchange). ufw and iptables both know them by name.
 */
export type Protocol = 'tcp' | 'udp' | 'vrrp'

/** Protocols without ports: a rule admits the whole protocol from its sources. */
export const PORTLESS: readonly Protocol[] = ['vrrp']

/** One allow rule of the host firewall: everything not allowed is dropped. */
export interface PortRule {
  /** tcp and udp: the port. Absent exactly for a protocol without ports (PORTLESS). */
  port?: number
  proto: Protocol
  /** Source networks (CIDR); empty = anywhere. */
  from: string[]
  /** Says what the rule is for; rendered next to it. */
  comment: string
}

/** A leaf certificate from foobar's internal CA for this host (e.g. database TLS, log transport). */
export interface CertRequest {
  /** Names the key pair in the state directory (`<name>-<host>`) and in `material.leaf(name, host)`. */
  name: string
  /** subjectAltName entries, e.g. `DNS:web1`, `IP:10.0.0.2`. */
  sans: string[]
}

/** A secret a component reads, and the inventory field that refers to it (for messages). */
export interface SecretUse {
  field: string
  ref: SecretRef | undefined
}

/** A metrics endpoint a component exposes; the monitoring server scrapes it and the firewall opens it to scrapers. */
export interface ScrapeTarget {
  job: string
  host: string
  /** What it is, for the firewall rule's comment ("nginx exporter"). */
  what: string
  port: number
  /** host:port as Prometheus writes it (IPv6 in brackets). */
  target: string
  /** What a client on the host itself or on the monitoring server fetches. */
  url: string
}

/** Certificates and keys for one run, read or made on the control machine; keys never leave it except to their hosts. */
export interface TlsMaterial {
  /** PEM: leaf + chain. */
  siteChain: string
  siteKey: string
  /** The CA HAProxy trusts when re-encrypting to the backends. */
  backendCa: string
  /** foobar's internal CA. */
  internalCa: string
  /** The leaves the components asked for (`certificates`), by name and host. */
  leaves: Record<string, {cert: string; key: string}>
  /** An internal-CA certificate standing in until the ACME one is issued. */
  placeholder?: boolean
}

/** Why a reload or step is planned that an earlier, interrupted run recorded and did not do. */
export const PENDING_REASON = 'pending from an interrupted run'

export const leafKey = (name: string, host: string) => `${name}-${host}`

export interface HostContext {
  inventory: Inventory
  host: Host
}

export interface RenderContext extends HostContext {
  /** Certificates and keys; absent when only rendering configs (`foobar render`): then no key material is written. */
  material?: TlsMaterial
  /**
   * What the component's `discover` script printed on this host, read just before rendering (plan, provision,
   * verify); undefined when no host was asked (`foobar render`, which touches none).
   */
  discovered?: string[]
  /** The address foobar connects from, as the host sees it (always allowed to reach SSH). */
  controlAddress?: string
  /** The ports every component on this host opens (the firewall renders from these). */
  ports: PortRule[]
  /** Every scrape target of the inventory, in component order (the monitoring server renders from these). */
  targets: ScrapeTarget[]
  /** The services of the components before this one on this host (in step order): e.g. to check them all. */
  services?: ServiceSpec[]
}

/** What the engine hands a live step when it is applied on one host. */
export interface HostApply {
  runner: Runner
  host: Host
  step: (s: string) => void
  /** Files written in this run (their previous versions are backed up). */
  written: string[]
  /** A shell script that puts back the previous versions of these files (from this run's backups). */
  restoreScript: (paths: string[]) => string
  /** Opens a *fresh* connection and runs a command: proves the next login works (guarded steps). */
  freshConnection: () => Promise<void>
}

/** One step a component plans against the host's live state (beyond files, packages and services). */
export interface LiveAction {
  /** Short kind for JSON and tests ('mode', 'sysctl', 'activate', 'seed'). */
  kind: string
  /** One line for the plan. */
  summary: string
  /** More lines under it in the plan (e.g. rules added and removed). */
  detail?: string[]
  /** What the action is about, for --json and tests (no secrets). */
  data?: Record<string, unknown>
  /**
   * Runs on the host after its files and services. Absent: the component applies it in its cross-host `converge`
   * phase instead (e.g. replication, primary first).
   */
  apply?: (h: HostApply) => Promise<void>
  /**
   * Could cut off access (firewall rules, sshd): applied after everything else on the host, behind a host-side
   * revert timer confirmed by a fresh connection (see components/guard.ts), and only if the rest succeeded.
   */
  guarded?: boolean
  /** Recorded on the host before anything changes, so a run cut short completes it next time (like a reload). */
  pending?: string
  /** Reported by its component's own verify check rather than as configuration drift. */
  ownCheck?: boolean
}

export interface PlanContext extends HostContext {
  /** The ports every component on this host opens, and the address foobar connects from (as in RenderContext). */
  ports: PortRule[]
  controlAddress?: string
  /** The files the host's components want (already rendered: a planner compares with them instead of rendering again). */
  files: DesiredFile[]
  /** systemd-detect-virt's answer (`none`, `kvm`, `systemd-nspawn`, ...). */
  virt: string
  /** Services and pseudo-services notified by files that change in this plan. */
  notified: Set<string>
  /** Reloads and pending steps an earlier, interrupted run recorded on the host. */
  pending: string[]
}

/** Cross-host work after every host of a batch is done (e.g. replication: the primary first). */
export interface ConvergeContext {
  inventory: Inventory
  /** The hosts whose plans had this component's actions and whose own changes succeeded. */
  hosts: Host[]
  connect: (host: Host) => Promise<Runner>
  step: (host: string, s: string) => void
}

/** A live-state part, set up once per run. */
export interface LivePlanner {
  /** Read-only shell lines whose output the engine hands back to `plan` (one round trip with the other facts). */
  script: (ctx: HostContext) => string
  /**
   * systemd units whose state the planner needs. The engine asks systemd once a host for every component's units
   * and its own services (two systemctl calls in all, not two a component: issue 20), and hands each unit back
   * among the script's lines as `echo "unit U $(systemctl is-enabled U || echo none) $(systemctl is-active U || true)"`
   * would print it (a state that makes is-enabled fail, such as disabled, is followed by a line `none ACTIVE`).
   */
  units?: (ctx: HostContext) => string[]
  /** Pure: the script's output lines -> the actions that bring the host to the desired state. */
  plan: (ctx: PlanContext, lines: string[]) => LiveAction[]
  /** Applies, across hosts, the actions without their own `apply`; returns failures by host name. */
  converge?: (ctx: ConvergeContext) => Promise<Record<string, string>>
}

export interface LiveState {
  /**
   * Called once per run before any host is touched; reads what the planner needs (secrets: a missing one is bad
   * input, exit 2, and nothing changed). Returns undefined when there is nothing to do in this inventory.
   */
  prepare: (inventory: Inventory) => LivePlanner | undefined
}

export interface CheckOutcome {
  ok: boolean
  detail: string
  /** Switched off in the inventory or not applicable here, with the reason in `detail` (not a failure). */
  skipped?: boolean
  /** The answer cannot change by waiting (a score): not retried. */
  final?: boolean
}

/** A read-only check of the live host; retried by the engine until it passes or verify's timeout runs out. */
export interface Check {
  name: string
  /** `progress`: what a long check is doing now (a line of verify's progress, e.g. Lynis' current test group). */
  run: (progress: (text: string) => void) => Promise<CheckOutcome>
}

export interface CheckContext extends HostContext {
  runner: Runner
  material: TlsMaterial
  /** The host's facts, read once for every check that needs them; `drop` makes the next read go to the host again. */
  facts: {get: () => Promise<{virt: string; live: Record<string, string[]>}>; drop: () => void}
  /** The host's pending plan against those facts (memoized with them). */
  plan: () => Promise<HostPlan>
  /** This host's scrape targets. */
  targets: ScrapeTarget[]
  /** A runner to another host, shared by every check of this verify run. */
  connect: (host: Host) => Promise<Runner>
  /** State shared by the checks of one verify run (e.g. a token written once on the primary). */
  shared: <T>(key: string, make: () => Promise<T>) => Promise<T>
  options: {
    lynis: boolean
    /** Run Lynis now even when the host's latest report could be used (`--lynis-now`). */
    lynisNow?: boolean
    /** A Lynis report older than this is not used (`--lynis-max-age`). */
    lynisMaxAgeHours?: number
  }
}

/** The load balancer's runtime control, for rolling changes: a component that balances traffic provides it. */
export interface Balancer {
  /** Hosts that this host's balancer sends traffic to, and that must be drained before they change. */
  isBackend: (host: Host) => boolean
  /**
   * In one look at the balancer: whether it serves traffic now (nothing to drain before the first provision), and
   * the backends foobar drained and did not enable again (a roll that stopped), which the run enables again once
   * their hosts have converged.
   */
  state: (lb: Runner) => Promise<{serving: boolean; drained: string[]}>
  drain: (lb: Runner, backend: string) => Promise<void>
  /** Back in rotation once the balancer's own health check sees it up (the LB side of the health gate). */
  enable: (lb: Runner, backend: string, timeoutMs?: number) => Promise<void>
  /** Each backend's traffic counters on this balancer (canary changes compare them); absent: no canary possible. */
  counters?: (lb: Runner) => Promise<BackendCounters[]>
}

/** A backend's counters as one balancer sees them: cumulative since the balancer started, except the latency. */
export interface BackendCounters {
  name: string
  /** Responses the backend gave (any status). */
  responses: number
  /** Requests that failed at the backend: 5xx responses, failed connections and aborted responses. */
  errors: number
  /** Average response time over the backend's recent requests (ms); undefined when it has answered none. */
  latencyMs?: number
  /** In rotation and passing the balancer's health check. */
  up: boolean
}

/**
 * Hosts that stand in for each other behind a floating address (load balancers sharing a VIP): the component that
 * moves the address provides this, for the hosts it applies to. Their changes never run at once: one host at a
 * time, the hosts not holding the address first, each ready to take over again before the next; the holder hands
 * the address to a peer first when its change would interrupt what it serves. A host that fails stops the others.
 */
export interface Failover {
  /** Whether the host holds the floating address now. */
  holds: (runner: Runner) => Promise<boolean>
  /**
   * Called before the holder's change is applied: hands the address to a peer when this plan would interrupt the
   * service (a restart, packages). Returns what makes the host take part again afterwards, or undefined when
   * nothing was handed over.
   */
  handOver: (ctx: {
    runner: Runner
    plan: HostPlan
    inventory: Inventory
    step: (s: string) => void
  }) => Promise<(() => Promise<void>) | undefined>
  /** After a host's change: resolves once it could take the address over again, throws after `timeoutMs`. */
  ready: (runner: Runner, timeoutMs?: number) => Promise<void>
}

export interface Component {
  name: string
  /** Components whose steps come first (packages, files, services, live steps). Order = these, then registry order. */
  after?: string[]
  /** Whether it has anything on this host (the inventory for settings that are not per host). */
  appliesTo: (host: Host, inventory: Inventory) => boolean
  desired?: (ctx: RenderContext) => ComponentState
  /** Ports it opens on this host and to whom (`targets`: every scrape target of this host). */
  ports?: (ctx: HostContext & {targets: ScrapeTarget[]}) => PortRule[]
  /**
   * Read-only shell lines run on the host before its configs are rendered (plan, provision, verify), for what a
   * config must take from the host itself (the interface that holds its address); their output reaches `desired`
   * as `discovered`.
   */
  discover?: (ctx: HostContext) => string
  /** Internal-CA certificates it needs on this host. */
  certificates?: (ctx: HostContext) => CertRequest[]
  /**
   * The secrets it reads for this host in a run (plan, provision, verify): each is read and checked on the control
   * machine before any host is contacted, so a missing one is bad input (exit 2), not a failed host.
   */
  secrets?: (ctx: HostContext) => SecretUse[]
  /** Metrics endpoints it exposes on this host. */
  targets?: (ctx: HostContext) => Array<Pick<ScrapeTarget, 'job' | 'what' | 'port'>>
  live?: LiveState
  /**
   * `drain` (default): a change of this component on a load-balanced backend takes it out of rotation first.
   * `none`: its changes do not disturb traffic (e.g. replication).
   */
  rolling?: 'drain' | 'none'
  checks?: (ctx: CheckContext) => Check[]
  /** The one component that provides the run's key material (reads or makes certificates). */
  material?: (inventory: Inventory, requests: Record<string, CertRequest[]>) => TlsMaterial
  /** The component that balances traffic provides the drain/enable control for rolling changes. */
  balancer?: Balancer
  /** The component that moves a floating address between its hosts provides the order of their changes. */
  failover?: Failover
}

export const emptyState = (): ComponentState => ({packages: [], files: [], absent: [], services: []})

export const file = (path: string, content: string, extra: Partial<DesiredFile> = {}): DesiredFile => ({
  path,
  content,
  mode: 0o644,
  owner: 'root',
  group: 'root',
  ...extra,
})

/** One step of a host's plan. Provision applies exactly these; `plan` prints them. */
export type Change =
  | {
      kind: 'packages'
      /** Every package apt-get installs: the missing ones, and the pinned ones not at their version. */
      install: string[]
      /** The pinned among them: installed as `name=to` (`from`: the version on the host, absent when not installed). */
      versions?: Array<{name: string; from?: string; to: string}>
      /** Present during this transaction only: the guards of the packages it installs. */
      guards?: InstallGuard[]
    }
  | {
      kind: 'file'
      path: string
      action: 'create' | 'update' | 'attributes'
      diff?: string
      file: DesiredFile
      detail: string
      component?: string
    }
  | {kind: 'remove'; path: string; component?: string}
  | {kind: 'service'; name: string; enable: boolean; start: boolean; component?: string}
  | {kind: 'reload'; name: string; how: 'reload' | 'restart'; reason: string; component?: string}
  | {kind: 'live'; component: string; action: LiveAction}

export interface HostPlan {
  host: string
  changes: Change[]
}
