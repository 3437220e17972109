import type {Host, Inventory} from '../inventory/index.js'
import {hostPort} from '../util/address.js'
import type {CertRequest, Component, ComponentState, DesiredFile, LivePlanner, PortRule, ScrapeTarget, TlsMaterial} from './contract.js'
import {orderComponents} from './order.js'

/** The registered components in dependency order: what every engine function works over. */
export interface Stack {
  components: Component[]
}

export function defineStack(components: Component[]): Stack {
  return {components: orderComponents(components)}
}

export interface HostDesired extends ComponentState {
  inventory: Inventory
  host: Host
  components: string[]
  ports: PortRule[]
  controlAddress?: string
  /** The live-state planners of this run that apply to the host, in component order. */
  live: Array<{component: string; planner: LivePlanner}>
}

export interface DesiredOptions {
  material?: TlsMaterial
  controlAddress?: string
  /** Only these components (e.g. `foobar firewall apply`). */
  only?: string[]
  /** This run's live planners (runPlan prepares them once); none when only rendering. */
  planners?: Map<string, LivePlanner>
  /** What each component's `discover` script printed on the host (see discoverHost); none when only rendering. */
  discovered?: Record<string, string[]>
}

const targetCache = new WeakMap<Inventory, WeakMap<Stack, {all: ScrapeTarget[]; byHost: Map<string, ScrapeTarget[]>}>>()

/** Every scrape target of the inventory, in component order, then host order (pure; computed once per inventory). */
export function scrapeTargets(stack: Stack, inventory: Inventory): ScrapeTarget[] {
  return targetsOf(stack, inventory).all
}

function targetsOf(stack: Stack, inventory: Inventory) {
  let byStack = targetCache.get(inventory)
  if (!byStack) targetCache.set(inventory, (byStack = new WeakMap()))
  let targets = byStack.get(stack)
  if (!targets) {
    const all = stack.components.flatMap((c) =>
      c.targets
        ? inventory.hosts
            .filter((h) => c.appliesTo(h, inventory))
            .flatMap((host) =>
              c.targets!({inventory, host}).map((t) => {
                const target = hostPort(host, t.port)
                return {...t, host: host.name, target, url: `http://${target}/metrics`}
              }),
            )
        : [],
    )
    // Each host's own, in the same order: looked up per host rather than filtered out of every host's (quadratic).
    const byHost = new Map<string, ScrapeTarget[]>()
    for (const t of all) {
      const mine = byHost.get(t.host)
      if (mine) mine.push(t)
      else byHost.set(t.host, [t])
    }
    byStack.set(stack, (targets = {all, byHost}))
  }
  return targets
}

/** The ports every component on the host opens. */
export function hostPorts(stack: Stack, inventory: Inventory, host: Host): PortRule[] {
  const targets = targetsOf(stack, inventory).byHost.get(host.name) ?? []
  return stack.components.flatMap((c) => (c.ports && c.appliesTo(host, inventory) ? c.ports({inventory, host, targets}) : []))
}

/** The internal-CA certificates the components need, per host name. */
export function certRequests(stack: Stack, inventory: Inventory): Record<string, CertRequest[]> {
  const out: Record<string, CertRequest[]> = {}
  for (const host of inventory.hosts) {
    const reqs = stack.components.flatMap((c) => (c.certificates && c.appliesTo(host, inventory) ? c.certificates({inventory, host}) : []))
    if (reqs.length) out[host.name] = reqs
  }
  return out
}

/** The run's key material, from the component that provides it. */
export function prepareMaterial(stack: Stack, inventory: Inventory): TlsMaterial {
  const provider = stack.components.find((c) => c.material)
  if (!provider?.material) throw new Error('no component provides TLS material')
  return provider.material(inventory, certRequests(stack, inventory))
}

/** Live planners for one run: prepared once (secrets read) for the components that apply to a selected host. */
export function preparePlanners(
  stack: Stack,
  inventory: Inventory,
  hosts: Host[],
  only?: string[],
  o: {lenient?: boolean} = {},
): Map<string, LivePlanner> {
  const out = new Map<string, LivePlanner>()
  for (const c of stack.components) {
    if (!c.live || (only && !only.includes(c.name)) || !hosts.some((h) => c.appliesTo(h, inventory))) continue
    let planner: LivePlanner | undefined
    try {
      planner = c.live.prepare(inventory)
    } catch (error) {
      // Lenient (verify): a planner that cannot be prepared (a missing secret) is left out; the component's own
      // checks report the problem.
      if (!o.lenient) throw error
    }
    if (planner) out.set(c.name, planner)
  }
  return out
}

/** The `discover` scripts of the components that apply to the host (those in `only`, when given), in component order. */
export function discoveryParts(
  stack: Stack,
  inventory: Inventory,
  host: Host,
  only?: string[],
): Array<{component: string; script: string}> {
  return stack.components
    .filter((c) => c.discover && c.appliesTo(host, inventory) && (!only || only.includes(c.name)))
    .map((c) => ({component: c.name, script: c.discover!({inventory, host})}))
}

/** Any PEM private-key block (PKCS#8, RSA, EC, DSA, ENCRYPTED, OPENSSH). */
export const PRIVATE_KEY_BLOCK = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/

/**
 * A file with a private key in it is secret whatever its component declared (never in a diff, plan, log or JSON),
 * and never readable by others (the "other" permission bits are dropped).
 */
export function secretIfPrivateKey(f: DesiredFile): DesiredFile {
  if (!PRIVATE_KEY_BLOCK.test(f.content)) return f
  return {...f, secret: true, mode: f.mode & ~0o007}
}

/** Everything a host should have, merged over the components that apply to it (pure). */
export function desiredState(stack: Stack, inventory: Inventory, host: Host, options: DesiredOptions = {}): HostDesired {
  const {material, controlAddress, only, planners, discovered} = options
  const ports = hostPorts(stack, inventory, host)
  const out: HostDesired = {
    inventory,
    host,
    components: [],
    ports,
    controlAddress,
    packages: [],
    versions: {},
    files: [],
    absent: [],
    services: [],
    live: [],
  }
  const targets = scrapeTargets(stack, inventory)
  for (const c of stack.components) {
    if (!c.appliesTo(host, inventory) || (only && !only.includes(c.name))) continue
    out.components.push(c.name)
    if (c.desired) {
      const s = c.desired({
        inventory,
        host,
        material,
        controlAddress,
        ports,
        targets,
        discovered: discovered?.[c.name],
        services: [...out.services],
      })
      out.packages.push(...s.packages, ...Object.keys(s.versions ?? {}))
      for (const [name, version] of Object.entries(s.versions ?? {})) {
        const other = out.versions![name]
        if (other !== undefined && other !== version) throw new Error(`${host.name}: two components pin ${name} (${other}, ${version})`)
        out.versions![name] = version
      }
      out.files.push(...s.files.map((f) => ({...f, component: c.name})))
      out.absent.push(...s.absent)
      if (s.installGuards?.length) (out.installGuards ??= []).push(...s.installGuards)
      out.services.push(...s.services.map((sv) => ({...sv, component: c.name})))
    }
    const planner = planners?.get(c.name)
    if (planner) out.live.push({component: c.name, planner})
  }
  out.packages = [...new Set(out.packages)].sort()
  out.files = out.files.map(secretIfPrivateKey)
  const paths = new Set<string>()
  for (const f of out.files) {
    if (paths.has(f.path)) throw new Error(`${host.name}: two components write ${f.path}`)
    paths.add(f.path)
  }
  return out
}
