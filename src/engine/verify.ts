import type {Host, Inventory} from '../inventory/index.js'
import {type Runner, type Transport, runnerCache} from '../remote/runner.js'
import {pool} from '../util/pool.js'
import {shq} from '../util/shell.js'
import {isContainer} from '../util/virt.js'
import {sleep} from '../util/wait.js'
import type {Check, CheckContext, CheckOutcome, HostPlan} from './contract.js'
import {type Stack, desiredState, prepareMaterial, preparePlanners, scrapeTargets} from './desired.js'
import type {HostFacts} from './facts.js'
import {planHost} from './plan.js'
import {discoverHost, gatherFacts} from './run.js'

export interface CheckResult {
  host: string
  check: string
  ok: boolean
  detail: string
  /** Switched off in the inventory or not applicable here, with the reason in `detail` (not a failure). */
  skipped?: boolean
}

/** What verify is doing, as it happens (drawn on stderr by the command; results are returned as before). */
export type VerifyEvent =
  /** Connected: the host's checks, about to run. */
  | {kind: 'host'; host: string; checks: string[]}
  | {kind: 'start'; host: string; check: string}
  /** A long check says what it is doing (Lynis: its current test group). */
  | {kind: 'progress'; host: string; check: string; text: string}
  /** A check failed and is tried again (until it passes or the timeout runs out). */
  | {kind: 'retry'; host: string; check: string; detail: string}
  | {kind: 'done'; host: string; check: string; result: CheckResult; ms: number}
  | {kind: 'hostDone'; host: string; results: CheckResult[]; ms: number}

export interface VerifyOptions {
  transport: Transport
  timeoutMs: number
  concurrency: number
  lynis?: boolean
  /** Run Lynis now instead of reading the host's latest report. */
  lynisNow?: boolean
  /** Hours after which a Lynis report is not used. */
  lynisMaxAgeHours?: number
  /** The first pause between tries of a failing check; it doubles up to `retryMaxMs`. */
  retryMs?: number
  retryMaxMs?: number
  onEvent?: (e: VerifyEvent) => void
}

/**
 * Read-only checks per host: the engine's own (the host matches the plan, every service active and healthy) and
 * every applicable component's, each retried until it passes or the timeout runs out.
 */
export async function verifyHosts(stack: Stack, inv: Inventory, hosts: Host[], o: VerifyOptions): Promise<CheckResult[]> {
  const material = prepareMaterial(stack, inv)
  const planners = preparePlanners(stack, inv, hosts, undefined, {lenient: true})
  const targets = scrapeTargets(stack, inv)
  // Runners to other hosts (the monitoring server, the primary) are shared by every check of the run.
  const shared = runnerCache(o.transport)
  const memo = new Map<string, Promise<unknown>>()
  const emit = (e: VerifyEvent) => {
    try {
      o.onEvent?.(e)
    } catch {
      // Drawing progress never fails a check.
    }
  }
  try {
    const perHost = await pool(hosts, o.concurrency, async (host) => {
      const t0 = Date.now()
      let runner: Runner
      try {
        runner = await o.transport.open(host)
      } catch (error) {
        const failed = [{host: host.name, check: 'ssh', ok: false, detail: error instanceof Error ? error.message : String(error)}]
        emit({kind: 'done', host: host.name, check: 'ssh', result: failed[0]!, ms: Date.now() - t0})
        emit({kind: 'hostDone', host: host.name, results: failed, ms: Date.now() - t0})
        return failed
      }
      try {
        const discovered = await discoverHost(stack, inv, host, runner)
        const desired = desiredState(stack, inv, host, {material, controlAddress: await runner.clientAddress(), planners, discovered})
        const facts = sharedFacts(() => gatherFacts(runner, desired))
        const plan = async (): Promise<HostPlan> => planHost(desired, await facts.get())
        const checks: Check[] = [
          {
            name: 'config',
            run: async () => {
              const drift = (await plan()).changes.filter((c) => c.kind !== 'reload' && !(c.kind === 'live' && c.action.ownCheck))
              if (drift.length === 0) return {ok: true, detail: 'matches the inventory'}
              facts.drop()
              return {ok: false, detail: `${drift.length} differences from the inventory (run foobar plan)`}
            },
          },
          ...desired.services.map((s) => ({
            name: `service ${s.name}`,
            run: async (): Promise<CheckOutcome> => {
              if (s.notInContainer && isContainer((await facts.get()).virt))
                return {ok: true, skipped: true, detail: `not run: ${s.notInContainer}`}
              const r = await runner.run(`systemctl is-active ${shq(s.name)} && ${s.health ?? 'true'}`, {check: false})
              return r.code === 0
                ? {ok: true, detail: 'active and healthy'}
                : {ok: false, detail: (r.stderr || r.stdout).trim().split('\n').pop() || 'not active'}
            },
          })),
        ]
        const ctx: CheckContext = {
          inventory: inv,
          host,
          runner,
          material,
          facts,
          plan,
          targets: targets.filter((t) => t.host === host.name),
          connect: (h) => (h.name === host.name ? Promise.resolve(runner) : shared.get(h)),
          shared: <T>(key: string, make: () => Promise<T>) => {
            let p = memo.get(key) as Promise<T> | undefined
            if (!p) memo.set(key, (p = make()))
            return p
          },
          options: {lynis: o.lynis ?? true, lynisNow: o.lynisNow, lynisMaxAgeHours: o.lynisMaxAgeHours},
        }
        for (const c of stack.components) if (c.checks && c.appliesTo(host, inv)) checks.push(...c.checks(ctx))
        emit({kind: 'host', host: host.name, checks: checks.map((c) => c.name)})
        const timing = {timeoutMs: o.timeoutMs, firstMs: o.retryMs ?? 250, maxMs: o.retryMaxMs ?? 2000}
        const results = await Promise.all(checks.map((c) => retry(host.name, c, timing, emit)))
        emit({kind: 'hostDone', host: host.name, results, ms: Date.now() - t0})
        return results
      } finally {
        runner.close()
      }
    })
    return perHost.flat()
  } finally {
    shared.closeAll()
  }
}

/**
 * A host's facts, read once for all the checks that need them. A check that fails drops them, so its retry reads
 * the host again instead of judging the same old answer; a read that failed is dropped too.
 */
function sharedFacts(read: () => Promise<HostFacts>): {get: () => Promise<HostFacts>; drop: () => void} {
  let current: Promise<HostFacts> | undefined
  const drop = () => {
    current = undefined
  }
  return {
    get: () =>
      (current ??= read().catch((error: unknown) => {
        drop()
        throw error
      })),
    drop,
  }
}

/**
 * Runs a check until it passes, says its answer is final, or the timeout runs out: the first retry comes soon
 * (a service a moment from ready), later ones back off, so a check that keeps failing does not hammer the host.
 */
async function retry(
  host: string,
  check: Check,
  t: {timeoutMs: number; firstMs: number; maxMs: number},
  emit: (e: VerifyEvent) => void,
): Promise<CheckResult> {
  const t0 = Date.now()
  const deadline = t0 + t.timeoutMs
  let pause = t.firstMs
  emit({kind: 'start', host, check: check.name})
  for (;;) {
    let r: CheckOutcome
    try {
      r = await check.run((text) => emit({kind: 'progress', host, check: check.name, text}))
    } catch (error) {
      r = {ok: false, detail: error instanceof Error ? error.message : String(error)}
    }
    if (r.ok || r.final || Date.now() > deadline) {
      const result: CheckResult = {host, check: check.name, ok: r.ok, detail: r.detail, ...(r.skipped ? {skipped: true} : {})}
      emit({kind: 'done', host, check: check.name, result, ms: Date.now() - t0})
      return result
    }
    emit({kind: 'retry', host, check: check.name, detail: r.detail})
    await sleep(Math.min(pause, Math.max(0, deadline - Date.now()) + 1))
    pause = Math.min(pause * 2, t.maxMs)
  }
}
