import {spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {expect} from 'vitest'
import {prepareMaterial} from '../../../src/components/index.js'
import {loadInventory} from '../../../src/inventory/index.js'
import {LAB_INVENTORY} from './lab.js'

export const BIN = join(process.cwd(), 'bin', 'run.js')

/** Runs the real CLI (dist/, built by `npm test`). */
export function foobar(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], {encoding: 'utf8', env: {...process.env, ...env}, timeout: 900_000})
  return {code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr}
}

/** What every command prints under --json (src/cli/base.ts, README "JSON output"). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Envelope<R = any> {
  status: number
  result: R | null
  warnings: string[]
  error?: {name: string; message: string; details?: string[]; suggestions?: string[]; failed?: Record<string, string>}
}

/** Parses `--json` output and checks it is one envelope: status, result, warnings, and an error when status is not 0. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function envelope<R = any>(stdout: string): Envelope<R> {
  let body: unknown
  try {
    body = JSON.parse(stdout)
  } catch (error) {
    throw new Error(`--json output is not one JSON document (${(error as Error).message}): ${stdout.slice(0, 500)}`)
  }
  const e = body as Envelope<R>
  const shaped =
    typeof e === 'object' &&
    e !== null &&
    typeof e.status === 'number' &&
    'result' in e &&
    Array.isArray(e.warnings) &&
    (e.status === 0 ? e.error === undefined : typeof e.error?.name === 'string' && typeof e.error?.message === 'string')
  if (!shaped) throw new Error(`--json output is not a {status, result, warnings, error?} envelope: ${stdout.slice(0, 500)}`)
  return e
}

/** The `result` of `--json` output (the envelope checked first). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function json<R = any>(stdout: string): R {
  return envelope<R>(stdout).result as R
}

/** A copy of the lab inventory with some text replaced (absolute paths inside it keep working). */
export function variant(name: string, edit: (text: string) => string): string {
  const dir = mkdtempSync(join(tmpdir(), 'foobar-inv-'))
  const file = join(dir, `${name}.yml`)
  // Keep the lab inventory's TLS state (internal CA, certificates), or every variant would deploy new ones.
  const state = join(process.cwd(), 'inventories', '.foobar', 'lab')
  const text = readFileSync(LAB_INVENTORY, 'utf8').replace('    type: self-signed', `    type: self-signed\n    state_dir: ${state}`)
  const edited = edit(text)
  if (edited === text) throw new Error(`variant ${name}: the edit changed nothing`)
  writeFileSync(file, edited)
  return file
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Runs the CLI without blocking this process, so a client loop or load generator can run meanwhile (spawnSync
 * would stall the event loop). `out` is stdout and stderr interleaved as they arrived; `onOutput` is called with
 * all of it so far each time more arrives (a test acting on what the CLI said).
 */
export function foobarAsync(
  args: string[],
  o: {onOutput?: (out: string) => void} = {},
): Promise<{code: number; stdout: string; stderr: string; out: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    let out = ''
    child.stdout.on('data', (d: Buffer) => ((stdout += d.toString()), (out += d.toString()), o.onOutput?.(out)))
    child.stderr.on('data', (d: Buffer) => ((stderr += d.toString()), (out += d.toString()), o.onOutput?.(out)))
    child.on('exit', (code) => resolve({code: code ?? -1, stdout, stderr, out}))
  })
}

/** Polls `ok` every second until it holds; resolves with the time it took, or fails naming what did not happen. */
export async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now()
  while (Date.now() - t0 < timeoutMs) {
    if (await ok()) return Date.now() - t0
    await sleep(1000)
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000}s`)
}

/**
 * The lab converged on lab.yml (a no-op when the files before left it so), and what a client of the site needs:
 * its name and the CA its backends' certificates chain to.
 */
export async function provisionedLab(): Promise<{domain: string; ca: string}> {
  const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
  expect(r.code, r.stdout + r.stderr).toBe(0)
  const inv = await loadInventory(LAB_INVENTORY)
  return {domain: inv.site.domain, ca: prepareMaterial(inv).backendCa}
}
