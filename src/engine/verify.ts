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

export interface VerifyOptions {
  transport: Transport
  timeoutMs: number
  concurrency: number
  lynis?: boolean
  /** Between retries of a failing check. */
  retryMs?: number
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
  try {
    const perHost = await pool(hosts, o.concurrency, async (host) => {
      let runner: Runner
      try {
        runner = await o.transport.open(host)
      } catch (error) {
        return [{host: host.name, check: 'ssh', ok: false, detail: error instanceof Error ? error.message : String(error)}]
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
          options: {lynis: o.lynis ?? true},
        }
        for (const c of stack.components) if (c.checks && c.appliesTo(host, inv)) checks.push(...c.checks(ctx))
        return await Promise.all(checks.map((c) => retry(host.name, c, o.timeoutMs, o.retryMs ?? 1000)))
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

async function retry(host: string, check: Check, timeoutMs: number, everyMs: number): Promise<CheckResult> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let r: CheckOutcome
    try {
      r = await check.run()
    } catch (error) {
      r = {ok: false, detail: error instanceof Error ? error.message : String(error)}
    }
    if (r.ok || r.final || Date.now() > deadline)
      return {host, check: check.name, ok: r.ok, detail: r.detail, ...(r.skipped ? {skipped: true} : {})}
    await sleep(everyMs)
  }
}
