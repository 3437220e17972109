import {createHash} from 'node:crypto'
import {tmpdir} from 'node:os'
import {basename, extname, join, resolve} from 'node:path'
import {Failure, PartialFailure, UserError} from '../util/errors.js'
import type {Host, Inventory} from '../inventory/index.js'
import {HostProgress} from './progress.js'
import {type Summary, formatPlan, formatSummary, summarize} from './plan-output.js'
import {STACK} from '../components/index.js'
import {type HostPlan, describe} from '../engine/plan.js'
import {type RunOptions, type RunReport, runPlan} from '../engine/run.js'
import {sshTransport} from '../remote/connection.js'
import {type Transport, preopened} from '../remote/runner.js'
import {type Held, holderInfo, lockLocal} from '../util/lock.js'
import {mark} from '../util/trace.js'

export interface SessionOptions {
  apply: boolean
  json: boolean
  yes: boolean
  concurrency: number
  serial?: number
  /** `provision --canary`: see RunOptions.canary. */
  canary?: RunOptions['canary']
  acceptNewHostKeys?: boolean
  /** Only these components (`foobar firewall apply`). */
  only?: string[]
  verb?: string
  /** Runs under the lock before anything is planned, when applying (e.g. creating key material). */
  prepare?: () => Promise<void>
  /** Seconds to wait for another run's lock before refusing (exit 5). */
  waitSeconds?: number
  log: (s: string) => void
}

/**
 * The control machine's lock on an inventory, named after its absolute path, in the runtime directory (not next to
 * the inventory: taking the lock must not create the state folder a failed run would leave behind).
 */
export function inventoryLockPath(file: string): string {
  const id = createHash('sha256').update(resolve(file)).digest('hex').slice(0, 16)
  return join(process.env.XDG_RUNTIME_DIR || tmpdir(), `foobar-${basename(file, extname(file)).replace(/[^A-Za-z0-9-]/g, '-')}-${id}.lock`)
}

/**
 * What `plan` and `provision` share: progress, the plan with diffs, the confirmation (never without a TTY), the
 * summary, and the exit code (3 when some hosts failed, 1 when all did).
 */
export async function runSession(inventory: Inventory, hosts: Host[], o: SessionOptions): Promise<{report: RunReport; summary: Summary}> {
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY)
  // The progress tree is drawn on stderr: redrawn in place only when stderr is a terminal.
  const drawable = Boolean(process.stderr.isTTY)
  if (o.apply && !o.yes && !interactive) {
    throw new UserError(
      'provision needs confirmation, and there is no terminal to ask on',
      [],
      ['Pass --yes to apply without asking, or run `foobar plan` to only see the changes.'],
    )
  }
  // One run at a time changes an inventory's hosts: a second one names the holder and refuses (or waits).
  const info = holderInfo(`foobar ${process.argv.slice(2).join(' ')}`)
  const waitMs = (o.waitSeconds ?? 0) * 1000
  // Connections begin now, while the local lock is taken and the material prepared (no host needed for either).
  const transport = preopened(sshTransport({acceptNewHostKeys: o.acceptNewHostKeys}), hosts, o.concurrency)
  let held: Held | undefined
  try {
    held = o.apply ? await lockLocal(inventoryLockPath(inventory.file), info, `inventory ${inventory.file}`, waitMs) : undefined
    mark('local lock taken')
    if (o.apply) await o.prepare?.()
    mark('prepared')
    return await runLocked(inventory, hosts, o, interactive, drawable, {info, waitMs}, transport)
  } finally {
    transport.close()
    held?.release()
  }
}

async function runLocked(
  inventory: Inventory,
  hosts: Host[],
  o: SessionOptions,
  interactive: boolean,
  drawable: boolean,
  lock: {info: string; waitMs: number},
  transport: Transport,
): Promise<{report: RunReport; summary: Summary}> {
  const mode = o.json ? 'silent' : drawable && (o.yes || !o.apply) ? 'tty' : 'plain'
  const progress = await HostProgress.open(
    hosts.map((h) => h.name),
    mode,
  )
  progress.start()
  const options: RunOptions = {
    apply: o.apply,
    concurrency: o.concurrency,
    serial: o.serial,
    canary: o.canary,
    transport,
    only: o.only,
    lock: o.apply ? lock : undefined,
    onStep: (h, s) => progress.step(h, s),
    beforeApply:
      o.apply && !o.yes
        ? async (plans: HostPlan[]) => {
            const say = o.json ? (text: string) => process.stderr.write(`${text}\n`) : o.log
            say(plans.map((p) => `\n${p.host}:\n${p.changes.map((c) => `  ~ ${describe(c)}`).join('\n')}`).join(''))
            // Under --json the question goes to stderr: stdout carries only the envelope. The prompt library is
            // loaded here, only when asking (it is most of a cold start otherwise).
            const {confirm} = await import('@inquirer/prompts')
            return confirm(
              {message: `Apply ${plans.reduce((n, p) => n + p.changes.length, 0)} changes to ${plans.length} hosts?`, default: false},
              o.json ? {output: process.stderr} : undefined,
            )
          }
        : undefined,
  }
  let report: RunReport
  try {
    report = await runPlan(STACK, inventory, hosts, options)
  } catch (error) {
    // Nothing may keep drawing after the run: a spinner left running would keep the command from exiting.
    await progress.abort(error)
    throw error
  }
  mark('run done')
  for (const r of report.hosts) progress.finish(r.host, r)
  await progress.close()
  const summary = summarize(report)
  if (!o.json) {
    if (!o.apply) o.log(formatPlan(report.hosts))
    o.log(formatSummary(summary, o.verb ?? (o.apply ? 'provision' : 'plan')))
  }
  return {report, summary}
}

/**
 * Exit codes: 1 when no selected host succeeded (failed and skipped hosts have not), 3 when some succeeded and
 * some did not.
 */
export function failIfNeeded(summary: Summary, total: number): void {
  const bad = summary.failed + summary.skipped
  if (bad === 0) return
  // The summary above lists each host and why (and --json's `error.failed`): the error itself does not repeat it.
  const succeeded = total - bad
  if (succeeded <= 0) {
    throw Object.assign(new Failure(`no host succeeded (${summary.failed} failed, ${summary.skipped} skipped)`), {
      failed: summary.failedHosts,
    })
  }
  throw new PartialFailure(
    `${bad} of ${total} hosts failed or were skipped: ${Object.keys(summary.failedHosts).join(', ')}`,
    summary.failedHosts,
  )
}
