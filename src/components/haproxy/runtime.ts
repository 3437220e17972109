import {Failure} from '../../util/errors.js'
import {shq} from '../../util/shell.js'
import type {Runner} from '../../remote/runner.js'
import type {BackendCounters} from '../../engine/contract.js'

/*
 * HAProxy's runtime API on the LB (the stats socket in haproxy.cfg): drain a web server before changing it,
 * enable it after its health gate, read backend states for verify.
 */

export const ADMIN_SOCKET = '/run/haproxy/admin.sock'
export const BACKEND = 'web'
const DRAINED_DIR = '/var/lib/foobar/drained'

export interface ServerState {
  name: string
  /** 0 stopped, 1 starting, 2 running, 3 stopping */
  opState: number
  /** bit field: 0x01 forced maintenance, 0x08 forced drain, ... */
  adminState: number
  checkStatus: string
  useSsl: boolean
}

export const isUp = (s: ServerState) => s.opState === 2 && s.adminState === 0
export const isDrained = (s: ServerState) => (s.adminState & 0x08) !== 0

async function api(conn: Runner, command: string): Promise<string> {
  const r = await conn.run(`echo ${shq(command)} | socat stdio ${ADMIN_SOCKET}`)
  return r.stdout
}

/** Parses `show servers state` (a version line, a `#` header naming the columns, then one line per server). */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '')
  const header =
    lines
      .find((l) => l.startsWith('#'))
      ?.slice(1)
      .trim()
      .split(/\s+/) ?? []
  const col = (fields: string[], name: string) => fields[header.indexOf(name)] ?? ''
  return lines
    .filter((l) => !l.startsWith('#') && l.split(/\s+/).length > 5)
    .map((l) => l.trim().split(/\s+/))
    .map((f) => ({
      name: col(f, 'srv_name'),
      opState: Number(col(f, 'srv_op_state')),
      adminState: Number(col(f, 'srv_admin_state')),
      checkStatus: col(f, 'srv_check_status'),
      useSsl: col(f, 'srv_use_ssl') === '1',
    }))
}

export async function serverStates(conn: Runner): Promise<ServerState[]> {
  return parseServersState(await api(conn, `show servers state ${BACKEND}`))
}

/**
 * Whether HAProxy serves and can be driven (active, its admin socket there, socat installed), and the servers
 * foobar drained and has not enabled again (a roll that stopped at a failed health gate): one command.
 */
export async function haproxyState(conn: Runner): Promise<{serving: boolean; drained: string[]}> {
  const r = await conn.run(
    `if systemctl is-active haproxy >/dev/null && test -S ${ADMIN_SOCKET} && command -v socat >/dev/null; then echo serving; else echo off; fi; ls ${DRAINED_DIR} 2>/dev/null || true`,
  )
  const [first, ...drained] = r.stdout.split('\n')
  return {serving: first === 'serving', drained: drained.filter(Boolean)}
}

async function waitState(conn: Runner, server: string, want: (s: ServerState) => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: ServerState | undefined
  for (;;) {
    last = (await serverStates(conn)).find((s) => s.name === server)
    if (last && want(last)) return
    if (Date.now() > deadline) {
      throw new Failure(
        `${conn.host.name}: backend ${server} not ${what} after ${timeoutMs / 1000}s (op state ${last?.opState}, admin state ${last?.adminState})`,
      )
    }
    // HAProxy's own checks (inter 2s, rise 2) decide when; polling its state often only ends the wait sooner.
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** `show stat`'s CSV: one record per proxy and server, named by the `# ` header line. */
export function parseStat(csv: string): Array<Record<string, string>> {
  const lines = csv.split('\n').filter((l) => l.trim() !== '')
  const header = lines[0]?.replace(/^# /, '').split(',') ?? []
  return lines.slice(1).map((l) => Object.fromEntries(l.split(',').map((v, i) => [header[i] ?? `${i}`, v])))
}

/** Current sessions on a server, from the stats CSV. */
async function sessions(conn: Runner, server: string): Promise<number> {
  const row = parseStat(await api(conn, 'show stat')).find((r) => r.pxname === BACKEND && r.svname === server)
  return Number(row?.scur ?? 0)
}

const num = (v: string | undefined) => (v === undefined || v === '' ? 0 : Number(v))

/**
 * The web backend's servers' counters (`show stat`): responses are the hrsp_* classes; errors are 5xx responses,
 * failed connections (econ) and aborted responses (eresp); latency is HAProxy's `rtime`, the average over the
 * server's last 1024 requests.
 */
export function backendCounters(csv: string): BackendCounters[] {
  return parseStat(csv)
    .filter((r) => r.pxname === BACKEND && r.svname !== 'BACKEND' && r.svname !== 'FRONTEND')
    .map((r) => {
      const responses = ['hrsp_1xx', 'hrsp_2xx', 'hrsp_3xx', 'hrsp_4xx', 'hrsp_5xx', 'hrsp_other'].reduce((n, k) => n + num(r[k]), 0)
      return {
        name: r.svname!,
        responses,
        errors: num(r.hrsp_5xx) + num(r.econ) + num(r.eresp),
        latencyMs: responses > 0 && r.rtime !== '' && r.rtime !== undefined ? Number(r.rtime) : undefined,
        up: (r.status ?? '').startsWith('UP'),
      }
    })
}

export async function counters(conn: Runner): Promise<BackendCounters[]> {
  return backendCounters(await api(conn, 'show stat'))
}

/** No new requests go to the server; waits (bounded) for its current ones to finish. Recorded on the LB. */
export async function drain(conn: Runner, server: string, timeoutMs = 15_000): Promise<void> {
  await api(conn, `set server ${BACKEND}/${server} state drain`)
  await conn.run(`mkdir -p ${DRAINED_DIR} && touch ${shq(`${DRAINED_DIR}/${server}`)}`)
  const deadline = Date.now() + timeoutMs
  while ((await sessions(conn, server)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250))
}

/** Back in rotation once HAProxy's own health check sees it UP: the LB side of the health gate. */
export async function enable(conn: Runner, server: string, timeoutMs = 30_000): Promise<void> {
  await api(conn, `set server ${BACKEND}/${server} state ready`)
  await waitState(conn, server, isUp, 'UP', timeoutMs)
  await conn.run(`rm -f ${shq(`${DRAINED_DIR}/${server}`)}`)
}
