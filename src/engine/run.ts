import type {Host, Inventory} from '../inventory/index.js'
import {type Held, type RunResult, type Runner, type Transport, runnerCache} from '../remote/runner.js'
import {LockedError} from '../util/errors.js'
import {BUSY, holdScript} from '../util/lock.js'
import {chunk, pool} from '../util/pool.js'
import {sleep} from '../util/wait.js'
import {type Applied, type HealthTiming, applyHost, revertApplied} from './apply.js'
import {type CanaryJudgement, type CanaryThresholds, CANARY_THRESHOLDS, describeFigures, judgeCanary} from './canary.js'
import type {Change, HostPlan, LivePlanner, TlsMaterial} from './contract.js'
import {
  type DesiredOptions,
  type HostDesired,
  type Stack,
  desiredState,
  discoveryParts,
  prepareMaterial,
  preparePlanners,
} from './desired.js'
import {type HostFacts, contentsQuery, contentsScript, discoveryScript, factsScript, parseDiscovery, parseFacts} from './facts.js'
import {contentsWanted, factQuery, planHost} from './plan.js'
import {mark} from '../util/trace.js'

export type HostStatus = 'unchanged' | 'changed' | 'pending' | 'failed' | 'skipped'

export interface HostResult {
  host: string
  status: HostStatus
  changes: Change[]
  error?: string
  durationMs: number
  /** What a successful apply wrote and reloaded (a canary judged worse is put back from it). */
  applied?: Applied
}

/** `provision --canary N`: the first N backends with changes go first and are watched before the rest. */
export interface CanaryOptions {
  count: number
  waitMs: number
  thresholds?: CanaryThresholds
  /** How often progress is read during the watch (default 5 s). */
  sampleMs?: number
}

/** The canary's outcome: judged (and put back when it failed), or why there was nothing to watch. */
export type CanaryReport =
  (CanaryJudgement & {hosts: string[]; rolledBack: boolean}) | {verdict: 'not-run'; reason: string; hosts: string[]}

export interface RunOptions {
  /** How hosts are reached: SSH in real runs (remote/connection.ts `sshTransport`), a fake in unit tests. */
  transport: Transport
  apply: boolean
  concurrency: number
  /** Rolling batches of this many hosts; a batch with a failure stops the run. */
  serial?: number
  /** Progress for the UI: host, what it is doing. */
  onStep?: (host: string, step: string) => void
  /** Only these components (e.g. `firewall`). */
  only?: string[]
  /** Called after planning, before applying (for confirmation prompts). Return false to stop. */
  beforeApply?: (plans: HostPlan[]) => Promise<boolean>
  /**
   * Changing runs lock every host first (held by a connection of their own for the whole run, released when it
   * ends or dies): `info` names this run to a second one, which waits up to `waitMs` and then refuses (exit 5).
   */
  lock?: {info: string; waitMs: number}
  /** How long the balancer may take to see a backend UP after a change (default 30 s). */
  lbGateMs?: number
  /** The run's key material (default: prepared from the stack). */
  material?: TlsMaterial
  health?: HealthTiming
  canary?: CanaryOptions
}

export interface RunReport {
  hosts: HostResult[]
  durationMs: number
  canary?: CanaryReport
}

/**
 * A host's facts for its desired state. The files' contents come only for the diffs: those of the files that differ,
 * in a second round trip when there are any (none on a converged host). `learnClient`: the round trip also tells the
 * runner the address it comes from (Runner.clientAddress then answers without asking).
 */
export async function gatherFacts(
  runner: Runner,
  desired: HostDesired,
  o: {learnClient?: boolean; first?: RunResult} = {},
): Promise<HostFacts> {
  const q = {...factQuery(desired), contents: false}
  // `first`: the facts script's result already (run in the host lock's round trip); run again only to say why it failed.
  const res = o.first?.code === 0 ? o.first : await runner.run(factsScript(q), o.learnClient ? {learnClient: true} : undefined)
  const facts = parseFacts(res.stdout, q)
  const wanted = contentsWanted(desired, facts)
  if (wanted.length === 0) return facts
  const read = parseFacts((await runner.run(contentsScript(wanted))).stdout, contentsQuery(wanted))
  for (const path of wanted) {
    const got = read.files[path]
    // Only the content the facts' hash describes: the file may have changed between the two reads.
    if (got?.content !== undefined && got.sha256 === facts.files[path]!.sha256) facts.files[path]!.content = got.content
  }
  return facts
}

/**
 * What the host's components need to read from it before their configs are rendered (their `discover` scripts), in
 * one round trip; none asked (and no round trip) when no component there has one.
 */
export async function discoverHost(stack: Stack, inventory: Inventory, host: Host, runner: Runner, only?: string[]) {
  const parts = discoveryParts(stack, inventory, host, only)
  if (parts.length === 0) return {}
  const res = await runner.run(discoveryScript(parts))
  return parseDiscovery(res.stdout, parts)
}

/**
 * A host's desired state (which holds the control address, as the host sees it) and its facts. When this end of the
 * connection knows its address (a direct connection), the desired state is made with that address and the facts
 * gathered at once; their round trip also learns the address the host sees (no channel of its own where the runner
 * can: a changing run's connection already holds its lock on one of sshd's two sessions). When the host names another
 * address (NAT), the desired state is made again with it, and the facts gathered again if that changes what is asked
 * of the host. Over a jump host (no guess) the address is asked first, beside the discovery.
 */
export async function desiredAndFacts(
  stack: Stack,
  inventory: Inventory,
  host: Host,
  runner: Runner,
  options: Omit<DesiredOptions, 'controlAddress' | 'discovered'>,
  step?: (s: string) => void,
  early?: EarlyFacts,
): Promise<{desired: HostDesired; facts: HostFacts}> {
  const guess = runner.localAddress?.()
  const desiredWith = (discovered: Record<string, string[]>) => (controlAddress: string | undefined) =>
    desiredState(stack, inventory, host, {...options, controlAddress, discovered})
  // Early facts were asked only where nothing is discovered (earlyFactsScript).
  if (early && early.guess === guess) {
    step?.('gathering facts')
    return checkAddress(runner, early.desired, guess, await gatherFacts(runner, early.desired, {first: early.result}), desiredWith({}))
  }
  const asked = guess === undefined ? runner.clientAddress() : undefined
  // Left unhandled it would end the process if the discovery failed first; awaited below.
  asked?.catch(() => undefined)
  const discovered = await discoverHost(stack, inventory, host, runner, options.only)
  const made = desiredWith(discovered)
  if (asked) {
    const desired = made(await asked)
    step?.('gathering facts')
    return {desired, facts: await gatherFacts(runner, desired)}
  }
  const first = made(guess)
  mark(`${host.name}: desired state made`)
  step?.('gathering facts')
  return checkAddress(runner, first, guess, await gatherFacts(runner, first, {learnClient: true}), made)
}

/**
 * Facts gathered with the desired state made for this end's address (`guess`): kept when the host names the same
 * address (the round trip learnt it), else the desired state is made again with the one it names, and the facts
 * gathered again if that changes what is asked of the host.
 */
async function checkAddress(
  runner: Runner,
  first: HostDesired,
  guess: string | undefined,
  facts: HostFacts,
  make: (controlAddress: string | undefined) => HostDesired,
): Promise<{desired: HostDesired; facts: HostFacts}> {
  const controlAddress = await runner.clientAddress()
  if (controlAddress === guess) return {desired: first, facts}
  const desired = make(controlAddress)
  const same = JSON.stringify(factQuery(desired)) === JSON.stringify(factQuery(first))
  return {desired, facts: same ? facts : await gatherFacts(runner, desired)}
}

/** A host's facts gathered in its lock's round trip (lockHosts), with the desired state and address they were asked for. */
export interface EarlyFacts {
  guess: string
  desired: HostDesired
  result: RunResult
}

/**
 * The facts script a changing run sends with a host's lock (one round trip for both: issue 20), when what it asks
 * depends on nothing the host has to answer first: no component there discovers anything, and this end knows the
 * address the host sees (desiredAndFacts' guess). undefined otherwise, and on any error: planning the host the
 * usual way then says what is wrong.
 */
export function earlyFactsScript(
  stack: Stack,
  inventory: Inventory,
  host: Host,
  runner: Runner,
  options: Omit<DesiredOptions, 'controlAddress' | 'discovered'>,
): {guess: string; desired: HostDesired; script: string} | undefined {
  try {
    const guess = runner.localAddress?.()
    if (guess === undefined || discoveryParts(stack, inventory, host, options.only).length > 0) return undefined
    const desired = desiredState(stack, inventory, host, {...options, controlAddress: guess, discovered: {}})
    return {guess, desired, script: factsScript({...factQuery(desired), contents: false})}
  } catch {
    return undefined
  }
}

export type Planned = {plan?: HostPlan; desired?: HostDesired; result?: HostResult; ms: number}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error))

/**
 * plan (and provision): connect -> facts -> pure plan -> (apply). Hosts run in parallel up to --concurrency, or in
 * rolling batches with --serial; a failing host never stops unrelated hosts within its batch.
 */
export async function runPlan(stack: Stack, inventory: Inventory, hosts: Host[], options: RunOptions): Promise<RunReport> {
  const started = Date.now()
  const material = options.material ?? prepareMaterial(stack, inventory)
  // Read before anything is touched: a missing secret is bad input (exit 2) and changes nothing.
  const planners = preparePlanners(stack, inventory, hosts, options.only)
  mark('material and planners ready')
  const facts = (host: Host, runner: Runner) => earlyFactsScript(stack, inventory, host, runner, {material, only: options.only, planners})
  const locks = options.apply && options.lock ? await lockHosts(hosts, options.transport, options.lock, options.concurrency, facts) : []
  try {
    // The connection holding a host's lock is the run's connection to it: one SSH handshake a host, not two; its
    // round trip brought the host's facts too.
    if (locks.length) mark('host locks held')
    const kept = new Map(locks.map((l) => [l.host, l.runner]))
    const early = new Map(locks.flatMap((l) => (l.early ? [[l.host, l.early] as const] : [])))
    return await runBatches(stack, inventory, hosts, options, material, planners, started, kept, early)
  } finally {
    for (const l of locks) l.release()
  }
}

export const HOST_LOCK = '/var/lib/foobar/run.lock'

/**
 * Takes every reachable host's lock, each on a connection of its own (a host that cannot be reached fails later,
 * in its plan). A lock taken elsewhere: wait up to `waitMs`, then release what was taken and refuse, naming each
 * holder. Nothing has changed on any host at that point.
 */
/** A host's lock, held on a connection that the run then uses for that host (and the facts gathered with it). */
type HeldLock = {host: string; runner: Runner; release: () => void; early?: EarlyFacts}

async function lockHosts(
  hosts: Host[],
  transport: Transport,
  lock: {info: string; waitMs: number},
  concurrency: number,
  facts?: (host: Host, runner: Runner) => {guess: string; desired: HostDesired; script: string} | undefined,
): Promise<HeldLock[]> {
  const deadline = Date.now() + lock.waitMs
  const held: HeldLock[] = []
  const busy: Record<string, string> = {}
  await pool(hosts, concurrency, async (host) => {
    let runner: Runner
    try {
      runner = await transport.open(host)
    } catch {
      return
    }
    if (!runner.hold) return runner.close()
    const asked = facts?.(host, runner)
    for (;;) {
      const h: Held = await runner
        .hold(holdScript(HOST_LOCK, lock.info), asked && {script: asked.script, learnClient: true})
        .catch(() => ({line: '', code: -1, release: () => {}}))
      if (h.line === 'locked') {
        const early = asked && h.then ? {guess: asked.guess, desired: asked.desired, result: h.then} : undefined
        held.push({host: host.name, runner, release: () => (h.release(), runner.close()), early})
        return
      }
      if (h.code !== BUSY) {
        // flock missing or the command failed: no lock on this host, and the run goes on as before locks.
        runner.close()
        return
      }
      if (Date.now() >= deadline) {
        busy[host.name] =
          (await runner.readFile(`${HOST_LOCK}.holder`).catch(() => undefined))?.trim() || 'a run that has not said who it is yet'
        runner.close()
        return
      }
      await sleep(1000)
    }
  })
  if (Object.keys(busy).length) {
    for (const l of held) l.release()
    const list = Object.entries(busy).map(([h, who]) => `${h}: ${who}`)
    throw new LockedError(
      `another foobar run is changing ${Object.keys(busy).join(', ')}: ${list.join('; ')}; nothing was changed (--wait SECONDS to wait for it)`,
      busy,
    )
  }
  return held
}

async function runBatches(
  stack: Stack,
  inventory: Inventory,
  hosts: Host[],
  options: RunOptions,
  material: TlsMaterial,
  planners: Map<string, LivePlanner>,
  started: number,
  kept: ReadonlyMap<string, Runner>,
  early: ReadonlyMap<string, EarlyFacts> = new Map(),
): Promise<RunReport> {
  // Rolling batches: the hosts sharing a floating address that do not hold it come first (each batch in turn).
  const ordered = options.apply && options.serial ? await standbyFirst(stack, inventory, hosts, options.transport) : hosts
  const batches = options.serial ? chunk(ordered, options.serial) : [hosts]
  const results: HostResult[] = []
  let canary: CanaryReport | undefined
  let stopped = false
  for (const [index, batch] of batches.entries()) {
    if (stopped) {
      results.push(
        ...batch.map((h) => ({
          host: h.name,
          status: 'skipped' as const,
          changes: [],
          error: 'not run: an earlier batch failed',
          durationMs: 0,
        })),
      )
      continue
    }
    const cache = runnerCache(options.transport, undefined, kept)
    try {
      // The facts that came with the locks describe the hosts as the run began: later batches (--serial) ask again.
      const planned = await pool(batch, options.concurrency, async (host) =>
        planOne(stack, inventory, host, material, planners, options, (h) => cache.get(h), index === 0 ? early.get(host.name) : undefined),
      )
      let proceed = options.apply
      if (proceed && options.beforeApply) {
        const pending = planned.filter((p) => p.plan && p.plan.changes.length > 0).map((p) => p.plan!)
        if (pending.length > 0) proceed = await options.beforeApply(pending)
      }
      const applyOne = async (p: Planned): Promise<HostResult> => {
        if (p.result) return p.result
        const t0 = Date.now()
        const plan = p.plan!
        if (plan.changes.length === 0)
          return {host: plan.host, status: 'unchanged' as const, changes: [], durationMs: Date.now() - t0 + p.ms}
        if (!proceed) return {host: plan.host, status: 'pending' as const, changes: plan.changes, durationMs: p.ms}
        try {
          const runner = cache.runners.get(plan.host)!
          const host = p.desired!.host
          const freshConnection = async () => {
            const c = await options.transport.open(host)
            try {
              await c.run('true', {root: false})
            } finally {
              c.close()
            }
          }
          const applied = await applyHost(runner, p.desired!, plan, {
            step: (s) => options.onStep?.(plan.host, s),
            replan: async () => planHost(p.desired!, await gatherFacts(runner, p.desired!)),
            freshConnection,
            health: options.health,
          })
          options.onStep?.(plan.host, `done: ${plan.changes.length} changes`)
          return {host: plan.host, status: 'changed' as const, changes: plan.changes, durationMs: Date.now() - t0 + p.ms, applied}
        } catch (error) {
          return {
            host: plan.host,
            status: 'failed' as const,
            changes: plan.changes,
            error: message(error),
            durationMs: Date.now() - t0 + p.ms,
          }
        }
      }
      const out: {canary?: CanaryReport} = {}
      const batchResults = await applyBatch(stack, inventory, planned, applyOne, proceed, options, (h) => cache.get(h), out)
      canary ??= out.canary
      if (proceed) await convergePhase(inventory, batchResults, planners, options, (h) => cache.get(h))
      results.push(...batchResults)
      if (options.serial && batchResults.some((r) => r.status === 'failed')) stopped = true
    } finally {
      cache.closeAll()
    }
  }
  // In the inventory's order, whatever order the batches ran in.
  const place = new Map(hosts.map((h, i) => [h.name, i]))
  results.sort((a, b) => (place.get(a.host) ?? 0) - (place.get(b.host) ?? 0))
  return {hosts: results, durationMs: Date.now() - started, ...(canary ? {canary} : {})}
}

/** Whether a change takes a load-balanced backend out of rotation first (its component's rolling policy). */
function drains(stack: Stack, c: Change): boolean {
  if (c.kind === 'packages') return true
  const component = stack.components.find((x) => x.name === c.component)
  return (component?.rolling ?? 'drain') === 'drain'
}

/**
 * Applies a batch. Backends with changes behind a serving load balancer roll one at a time (or --serial at a
 * time): drained, changed and reloaded, health-gated by the host's own checks and by the balancer seeing them up,
 * then enabled. A server that fails its gate stops the roll and stays drained; the others keep serving.
 *
 * With a canary (`options.canary`), the first N of those backends change before any other host and are watched
 * under real traffic for the wait; judged worse than the backends not changed (canary.ts), each gets its previous
 * configuration back and returns to rotation, and nothing else is changed. `out.canary` says what was judged.
 */
export async function applyBatch(
  stack: Stack,
  inventory: Inventory,
  planned: Planned[],
  applyOne: (p: Planned) => Promise<HostResult>,
  proceed: boolean,
  options: Pick<RunOptions, 'concurrency' | 'serial' | 'onStep' | 'lbGateMs' | 'canary' | 'health'>,
  connect: (h: Host) => Promise<Runner>,
  out: {canary?: CanaryReport} = {},
): Promise<HostResult[]> {
  const lbComponent = stack.components.find((c) => c.balancer)
  const balancer = lbComponent?.balancer
  const isRolling = (p: Planned) =>
    proceed &&
    balancer !== undefined &&
    p.plan !== undefined &&
    balancer.isBackend(p.desired!.host) &&
    p.plan.changes.some((c) => drains(stack, c))
  const hasBackends = balancer !== undefined && planned.some((p) => p.desired && balancer.isBackend(p.desired.host))
  const serving = proceed && hasBackends ? await servingLbs(inventory, (h) => lbComponent!.appliesTo(h, inventory), balancer!, connect) : []
  const lbs = serving.map((s) => s.runner)
  // Hosts sharing a floating address change one at a time, the standby first (the others in parallel meanwhile).
  const applyAll = (list: Planned[]) => applyWithFailover(stack, inventory, list, applyOne, proceed, options, connect)
  const notRun = (reason: string) => {
    if (options.canary && proceed) out.canary = {verdict: 'not-run', reason, hosts: []}
  }
  if (!balancer || lbs.length === 0) {
    notRun(balancer && hasBackends ? 'no load balancer is serving yet: there is no traffic to watch' : 'no load-balanced server here')
    return applyAll(planned)
  }

  const byHost = new Map<string, HostResult>()
  /** Not run because the roll stopped: hosts without changes (or that could not be planned) say so instead. */
  const skip = (list: Planned[], why: string) => {
    for (const p of list) {
      if (p.result) byHost.set(p.result.host, p.result)
      else if (p.plan!.changes.length === 0)
        byHost.set(p.plan!.host, {host: p.plan!.host, status: 'unchanged', changes: [], durationMs: p.ms})
      else
        byHost.set(p.plan!.host, {host: p.plan!.host, status: 'skipped', changes: p.plan!.changes, error: `not run: ${why}`, durationMs: 0})
    }
  }
  // The load balancers' own changes come after the web tier's, so a roll that stops part-way never leaves them
  // on a configuration their backends do not serve: they are then skipped with the rest of the roll.
  const isLb = (p: Planned) => p.desired !== undefined && lbComponent!.appliesTo(p.desired.host, inventory)
  const rest = planned.filter((p) => !isRolling(p) && !isLb(p))
  /** Back in rotation if every balancer sees it healthy (its previous configuration restored); else drained again. */
  const backInRotation = async (host: string): Promise<boolean> => {
    try {
      for (const lb of lbs) {
        options.onStep?.(host, `previous configuration restored: waiting for ${lb.host.name} to see it UP`)
        await balancer.enable(lb, host, options.lbGateMs)
      }
      return true
    } catch {
      for (const lb of lbs) await balancer.drain(lb, host).catch(() => undefined)
      return false
    }
  }

  /** Drains, applies and enables one group; returns the first host that failed. */
  const rollGroup = async (group: Planned[]): Promise<string | undefined> => {
    let failed: string | undefined
    // A server the balancer could not drain is not changed: it fails there and the roll stops.
    const drainedOk: Planned[] = []
    for (const p of group) {
      try {
        for (const lb of lbs) {
          options.onStep?.(p.plan!.host, `draining in ${lb.host.name}`)
          await balancer.drain(lb, p.plan!.host)
        }
        drainedOk.push(p)
      } catch (error) {
        const r: HostResult = {
          host: p.plan!.host,
          status: 'failed',
          changes: p.plan!.changes,
          error: `draining it in the load balancer failed: ${message(error)}; not changed`,
          durationMs: 0,
        }
        byHost.set(r.host, r)
        failed ??= r.host
      }
    }
    for (const r of await pool(drainedOk, options.concurrency, applyOne)) {
      if (r.status === 'changed') {
        try {
          for (const lb of lbs) {
            options.onStep?.(r.host, `health gate: waiting for ${lb.host.name} to see it UP`)
            await balancer.enable(lb, r.host, options.lbGateMs)
          }
        } catch (error) {
          r.status = 'failed'
          r.error = `health gate at the load balancer: ${message(error)}; left drained`
        }
      } else if (r.status === 'failed') {
        // Back to full strength: a server whose change failed but whose previous configuration serves again is
        // not left out of rotation; it stays drained only when it is not healthy.
        r.error = `${r.error}; ${(await backInRotation(r.host)) ? 'back in the load balancer on its previous configuration' : 'left drained in the load balancer (not healthy)'}`
      }
      if (r.status === 'failed') failed ??= r.host
      byHost.set(r.host, r)
    }
    return failed
  }

  let rolling = planned.filter(isRolling)
  let stoppedAt: string | undefined
  /** Why the hosts after the stop are not run. */
  let stopped = () => `the roll stopped at ${stoppedAt}`
  let restDone = false
  if (options.canary) {
    if (rolling.length === 0) notRun('no load-balanced server has changes that take it out of rotation')
    else if (!balancer.counters) notRun('the load balancer has no traffic counters to judge by')
    else {
      const group = rolling.slice(0, options.canary.count)
      rolling = rolling.slice(options.canary.count)
      const names = group.map((p) => p.plan!.host)
      stoppedAt = await rollGroup(group)
      if (stoppedAt) {
        out.canary = {verdict: 'not-run', reason: `the canary ${stoppedAt} failed before it could be watched`, hosts: names}
      } else {
        const judgement = await watchCanary(names, planned, lbs, balancer, options.canary, options.onStep)
        out.canary = {...judgement, hosts: names, rolledBack: false}
        if (judgement.verdict === 'fail') {
          stoppedAt = names[0]
          out.canary.rolledBack = await putBack(group)
        }
      }
      if (stoppedAt) {
        stopped = () => `the canary ${stoppedAt} failed`
        skip(rest, stopped())
        restDone = true
      }
    }
  }

  /** The canary judged worse: each back on its previous configuration and in rotation, or left drained. */
  async function putBack(group: Planned[]): Promise<boolean> {
    let all = true
    const reasons = out.canary && 'reasons' in out.canary ? out.canary.reasons.join('; ') : ''
    for (const p of group) {
      const r = byHost.get(p.plan!.host)!
      const step = (s: string) => options.onStep?.(r.host, s)
      let state: string
      try {
        for (const lb of lbs) {
          step(`canary judged worse: draining in ${lb.host.name}`)
          await balancer!.drain(lb, r.host)
        }
        await revertApplied(await connect(p.desired!.host), p.desired!, r.applied ?? {written: [], services: []}, {
          step,
          health: options.health,
        })
        state = (await backInRotation(r.host))
          ? 'previous configuration restored, back in the load balancer'
          : 'previous configuration restored, left drained in the load balancer (not healthy)'
      } catch (error) {
        all = false
        state = `putting the previous configuration back failed: ${message(error)}; left drained in the load balancer`
      }
      r.status = 'failed'
      r.error = `canary judged worse than the servers not changed: ${reasons}; ${state}`
    }
    return all
  }

  if (!restDone) for (const r of await applyAll(rest)) byHost.set(r.host, r)
  const size = options.serial ?? 1
  for (let i = 0; i < rolling.length; i += size) {
    const group = rolling.slice(i, i + size)
    if (stoppedAt) skip(group, stopped())
    else stoppedAt = await rollGroup(group)
  }
  const lbHosts = planned.filter((p) => !isRolling(p) && isLb(p))
  if (stoppedAt) skip(lbHosts, stopped())
  else for (const r of await applyAll(lbHosts)) byHost.set(r.host, r)
  // A server left drained by an earlier stopped roll comes back once its host is healthy and converged again. The
  // list was read before this run changed anything; a server this run rolled is left as its roll left it (enabled
  // when it passed its gates, drained when it failed one).
  const rolled = new Set(planned.filter(isRolling).map((p) => p.plan!.host))
  for (const {runner: lb, drained} of serving) {
    for (const name of drained) {
      const r = byHost.get(name)
      if (r && !rolled.has(name) && (r.status === 'unchanged' || r.status === 'changed')) {
        options.onStep?.(name, `enabling again in ${lb.host.name}`)
        await balancer.enable(lb, name, options.lbGateMs).catch((e: Error) => {
          r.status = 'failed'
          r.error = e.message
        })
      }
    }
  }
  return planned.map((p) => byHost.get(p.plan?.host ?? p.result!.host) ?? p.result!)
}

/**
 * Watches the canary for the wait: every balancer's counters at the start and the end (read every `sampleMs` for
 * progress), the canary against every other backend of the batch (those not changed yet and those without changes).
 */
async function watchCanary(
  canary: string[],
  planned: Planned[],
  lbs: Runner[],
  balancer: NonNullable<Stack['components'][number]['balancer']>,
  o: CanaryOptions,
  onStep: RunOptions['onStep'],
): Promise<CanaryJudgement> {
  const read = () => Promise.all(lbs.map((lb) => balancer.counters!(lb)))
  const baseline = planned
    .filter((p) => p.desired && balancer.isBackend(p.desired.host) && !canary.includes(p.desired.host.name))
    .map((p) => p.desired!.host.name)
  const thresholds = o.thresholds ?? CANARY_THRESHOLDS
  const before = await read()
  // The window opens once the baseline is read: a slow read (a loaded balancer) must not eat the wait, or leave no
  // sample after it at all (the canary then "answered 0 requests").
  const started = Date.now()
  let after = before
  for (;;) {
    const left = o.waitMs - (Date.now() - started)
    if (left <= 0) break
    await sleep(Math.min(left, o.sampleMs ?? 5000))
    after = await read()
    const seconds = Math.round((Date.now() - started) / 1000)
    const j = judgeCanary(canary, baseline, before, after, seconds, thresholds)
    for (const h of canary) onStep?.(h, `canary: watched ${seconds}/${Math.round(o.waitMs / 1000)} s: ${describeFigures(j.canary)}`)
  }
  return judgeCanary(canary, baseline, before, after, Math.round((Date.now() - started) / 1000), thresholds)
}

/**
 * Applies `planned`: the hosts of a failover group (the hosts a `failover` component applies to, e.g. load balancers
 * sharing a floating address) one at a time, those not holding the address first; each ready to take over again
 * before the next, the holder handing the address over first when its change would interrupt it; a host that fails
 * stops the group. Every other host in parallel, meanwhile. Results in the order of `planned`.
 */
async function applyWithFailover(
  stack: Stack,
  inventory: Inventory,
  planned: Planned[],
  applyOne: (p: Planned) => Promise<HostResult>,
  proceed: boolean,
  options: Pick<RunOptions, 'concurrency' | 'onStep'>,
  connect: (h: Host) => Promise<Runner>,
): Promise<HostResult[]> {
  const component = stack.components.find((c) => c.failover)
  const failover = component?.failover
  const inGroup = (p: Planned) =>
    proceed &&
    failover !== undefined &&
    p.plan !== undefined &&
    p.plan.changes.length > 0 &&
    component!.appliesTo(p.desired!.host, inventory)
  const group = planned.filter(inGroup)
  if (!failover || group.length === 0) return pool(planned, options.concurrency, applyOne)
  const others = planned.filter((p) => !inGroup(p))
  const inItsTurn = async (p: Planned, step: (s: string) => void, holds: boolean): Promise<HostResult> => {
    const plan = p.plan!
    let runner: Runner
    let rejoin: (() => Promise<void>) | undefined
    try {
      runner = await connect(p.desired!.host)
      if (holds) rejoin = await failover.handOver({runner, plan, inventory, step})
    } catch (error) {
      const why = `handing the floating address over failed: ${message(error)}; not changed`
      return {host: plan.host, status: 'failed', changes: plan.changes, error: why, durationMs: 0}
    }
    const r = await applyOne(p)
    const fail = (why: string) => {
      r.status = 'failed'
      r.error = r.error ? `${r.error}; ${why}` : why
    }
    if (rejoin) {
      step('taking part in the floating address again')
      await rejoin().catch((error: unknown) => fail(`taking part in the floating address again failed: ${message(error)}`))
    }
    if (r.status === 'changed') {
      step('waiting until it could take the floating address over')
      await failover.ready(runner).catch((error: unknown) => fail(`not ready to take the floating address over: ${message(error)}`))
    }
    return r
  }
  const inTurn = async (): Promise<HostResult[]> => {
    const holding = new Map<Planned, boolean>()
    // A host that cannot say is taken for a standby: it changes before the others.
    for (const p of group) {
      holding.set(
        p,
        await connect(p.desired!.host)
          .then((r) => failover.holds(r))
          .catch(() => false),
      )
    }
    const order = [...group.filter((p) => !holding.get(p)), ...group.filter((p) => holding.get(p))]
    const out: HostResult[] = []
    let stoppedAt: string | undefined
    for (const p of order) {
      const plan = p.plan!
      const step = (s: string) => options.onStep?.(plan.host, s)
      if (stoppedAt) {
        out.push({
          host: plan.host,
          status: 'skipped',
          changes: plan.changes,
          error: `not run: ${stoppedAt} failed first (hosts sharing a floating address change one at a time)`,
          durationMs: 0,
        })
        continue
      }
      const r = await inItsTurn(p, step, holding.get(p) ?? false)
      if (r.status === 'failed') stoppedAt = plan.host
      out.push(r)
    }
    return out
  }
  const [a, b] = await Promise.all([pool(others, options.concurrency, applyOne), inTurn()])
  const byHost = new Map([...a, ...b].map((r) => [r.host, r]))
  return planned.map((p) => byHost.get(p.plan?.host ?? p.result!.host)!)
}

/**
 * The hosts with the members of a failover group reordered among their own places: those not holding the floating
 * address first. Each member is asked once on a connection of its own (one that cannot be reached keeps its place
 * among the others: it fails in its batch).
 */
async function standbyFirst(stack: Stack, inventory: Inventory, hosts: Host[], transport: Transport): Promise<Host[]> {
  const component = stack.components.find((c) => c.failover)
  const group = component ? hosts.filter((h) => component.appliesTo(h, inventory)) : []
  if (group.length < 2) return hosts
  const holds = new Map<Host, boolean>()
  for (const h of group) {
    const runner = await transport.open(h).catch(() => undefined)
    if (!runner) continue
    try {
      holds.set(h, await component!.failover!.holds(runner).catch(() => false))
    } finally {
      runner.close()
    }
  }
  const order = [...group.filter((h) => !holds.get(h)), ...group.filter((h) => holds.get(h))]
  let next = 0
  return hosts.map((h) => (group.includes(h) ? order[next++]! : h))
}

/** After the hosts' own changes: each component's cross-host step (e.g. replication, the primary first). */
async function convergePhase(
  inventory: Inventory,
  results: HostResult[],
  planners: Map<string, LivePlanner>,
  options: RunOptions,
  connect: (h: Host) => Promise<Runner>,
): Promise<void> {
  for (const [component, planner] of planners) {
    if (!planner.converge) continue
    const todo = results.filter(
      (r) => r.status === 'changed' && r.changes.some((c) => c.kind === 'live' && c.component === component && !c.action.apply),
    )
    if (todo.length === 0) continue
    const hosts = inventory.hosts.filter((h) => todo.some((r) => r.host === h.name))
    const failed = await planner.converge({inventory, hosts, connect, step: (h, s) => options.onStep?.(h, s)})
    for (const r of todo) {
      if (failed[r.host]) {
        r.status = 'failed'
        r.error = failed[r.host]
      }
    }
  }
}

/**
 * The load balancers whose balancer is serving now (nothing to drain before the first provision), each with the
 * servers an earlier stopped roll left drained there.
 */
async function servingLbs(
  inventory: Inventory,
  isLb: (h: Host) => boolean,
  balancer: NonNullable<Stack['components'][number]['balancer']>,
  connect: (h: Host) => Promise<Runner>,
): Promise<Array<{runner: Runner; drained: string[]}>> {
  const out: Array<{runner: Runner; drained: string[]}> = []
  for (const lb of inventory.hosts.filter(isLb)) {
    try {
      const runner = await connect(lb)
      const state = await balancer.state(runner)
      if (state.serving) out.push({runner, drained: state.drained})
    } catch {
      // An unreachable LB sends no traffic to drain; its own failure is reported where it is in the run.
    }
  }
  return out
}

async function planOne(
  stack: Stack,
  inventory: Inventory,
  host: Host,
  material: TlsMaterial,
  planners: Map<string, LivePlanner>,
  options: RunOptions,
  connect: (h: Host) => Promise<Runner>,
  early?: EarlyFacts,
): Promise<Planned> {
  const t0 = Date.now()
  try {
    options.onStep?.(host.name, 'connecting')
    const runner = await connect(host)
    const {desired, facts} = await desiredAndFacts(
      stack,
      inventory,
      host,
      runner,
      {material, only: options.only, planners},
      (s) => options.onStep?.(host.name, s),
      early,
    )
    const plan = planHost(desired, facts)
    mark(`${host.name}: planned`)
    options.onStep?.(host.name, plan.changes.length ? `${plan.changes.length} changes planned` : 'no changes')
    return {plan, desired, ms: Date.now() - t0}
  } catch (error) {
    return {result: {host: host.name, status: 'failed', changes: [], error: message(error), durationMs: Date.now() - t0}, ms: 0}
  }
}
