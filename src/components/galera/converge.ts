import type {Host, Inventory} from '../../inventory/index.js'
import type {Runner} from '../../remote/runner.js'
import {Failure} from '../../util/errors.js'
import {shq} from '../../util/shell.js'
import {sleep} from '../../util/wait.js'
import {DB_ENDPOINT_PATHS} from '../db-endpoint/index.js'
import {parseStat} from '../haproxy/runtime.js'
import {
  GALERA_STATE_FILE,
  type MemberFacts,
  type Position,
  chooseBootstrap,
  galeraArbitrator,
  galeraMembers,
  inPrimary,
  memberFactsScript,
  parseMemberFacts,
  planMember,
  positionOf,
  synced,
} from './cluster.js'

/*
 * Brings the members into one cluster, one member at a time: a new cluster is started on exactly one member (never
 * while any member cannot be asked), the others join it by state transfer, and a member whose config changed is
 * restarted only once every other member is synced (so the quorum holds throughout).
 */

const SYNC_TIMEOUT_MS = 600_000

export async function memberFacts(conn: Runner, files: string[]): Promise<MemberFacts> {
  const r = await conn.run(memberFactsScript(files), {check: false, timeoutMs: 60_000})
  return parseMemberFacts(r.stdout.split('\n').filter(Boolean))
}

/** Waits until the member is synced in the primary component (a state transfer can take a while). */
async function waitSynced(conn: Runner, files: string[], timeoutMs = SYNC_TIMEOUT_MS): Promise<MemberFacts> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const f = await memberFacts(conn, files)
    if (synced(f)) return f
    if (Date.now() > deadline) {
      const why = await journal(conn)
      throw new Failure(
        `${conn.host.name}: not synced in the cluster after ${timeoutMs / 1000} s (${f.up ? `${f.status.wsrep_cluster_status ?? '?'}, ${f.status.wsrep_local_state_comment ?? '?'}` : `database ${f.service}`})${why ? `: ${why.split('\n').join(' | ')}` : `; see journalctl -u mariadb on ${conn.host.name}`}`,
      )
    }
    await sleep(500)
  }
}

/** The tail of the database's journal, for an error that says why a start failed. */
async function journal(conn: Runner): Promise<string> {
  const r = await conn.run(
    "journalctl -u mariadb -n 40 --no-pager -o cat 2>/dev/null | grep -E '\\[ERROR\\]|WSREP.*(fail|error|refus)' | tail -4",
    {
      check: false,
    },
  )
  return r.stdout.trim()
}

/** Starts (or restarts) the member's database with `command` and waits until it is synced. */
async function start(conn: Runner, command: string, files: string[], step: (s: string) => void): Promise<MemberFacts> {
  const r = await conn.run(command, {check: false, timeoutMs: SYNC_TIMEOUT_MS + 60_000})
  if (r.code !== 0) {
    const why = await journal(conn)
    throw new Failure(`${conn.host.name}: \`${command}\` failed${why ? `: ${why.split('\n').join(' | ')}` : ''}`)
  }
  step('waiting until it is synced')
  return waitSynced(conn, files)
}

/** A member that is down and whose grastate.dat does not know its position (a crash): Galera's own recovery. */
async function recoverPosition(conn: Runner): Promise<{uuid: string; seqno: number} | undefined> {
  const r = await conn.run(
    `out=$(mktemp) && chown mysql "$out" && runuser -u mysql -- mariadbd --wsrep-recover --log-error="$out" >/dev/null 2>&1; grep -o 'Recovered position: [0-9a-f-]*:-\\?[0-9]*' "$out" | tail -1; rm -f "$out"`,
    {check: false, timeoutMs: 180_000},
  )
  const m = /Recovered position: ([0-9a-f-]+):(-?\d+)/.exec(r.stdout)
  return m ? {uuid: m[1]!, seqno: Number(m[2])} : undefined
}

/**
 * How long in-flight transactions get to finish on a member the endpoints stopped sending new connections to: until
 * no endpoint has a session to it (polled), at least DRAIN_MIN_MS and at most DRAIN_MAX_MS.
 */
const DRAIN_MIN_MS = 1000
const DRAIN_MAX_MS = 15_000

/** One endpoint's row for a member, or why there is none. */
type EndpointRow = ReturnType<typeof parseStat>[number] | 'unreadable' | 'absent'

/**
 * `member`'s row in each web server's database endpoint (HAProxy's `show stat`), one entry per web server:
 * `unreadable` where the endpoint could not be reached or read, `absent` where it has no such server.
 */
async function endpointRows(inv: Inventory, connect: (h: Host) => Promise<Runner>, member: string): Promise<EndpointRow[]> {
  const rows: EndpointRow[] = []
  for (const web of inv.hosts.filter((h) => h.roles.includes('web'))) {
    try {
      const c = await connect(web)
      const r = await c.run(`echo 'show stat' | socat stdio ${DB_ENDPOINT_PATHS.socket}`, {check: false})
      if (r.code !== 0) rows.push('unreadable')
      else rows.push(parseStat(r.stdout).find((s) => s.pxname === 'writer' && s.svname === member) ?? 'absent')
    } catch {
      rows.push('unreadable')
    }
  }
  return rows
}

/** Sessions each web server's endpoint holds to `member` (HAProxy's scur), summed; undefined where unknown. */
async function endpointSessions(inv: Inventory, connect: (h: Host) => Promise<Runner>, member: string): Promise<number | undefined> {
  let total = 0
  for (const row of await endpointRows(inv, connect, member)) {
    const scur = typeof row === 'string' ? NaN : Number(row.scur)
    if (typeof row === 'string' || row.scur === undefined || !Number.isInteger(scur)) return undefined
    total += scur
  }
  return total
}

/** Waits until the endpoints hold no session to `member` (see DRAIN_MIN_MS). */
async function drain(inv: Inventory, connect: (h: Host) => Promise<Runner>, member: string): Promise<void> {
  const started = Date.now()
  await sleep(DRAIN_MIN_MS)
  while (Date.now() - started < DRAIN_MAX_MS) {
    const n = await endpointSessions(inv, connect, member)
    if (n === 0) return
    if (n === undefined) {
      // Not readable: the fixed wait this replaced (2 s).
      await sleep(Math.max(0, 2000 - (Date.now() - started)))
      return
    }
    await sleep(250)
  }
}

/** How long the endpoints get to see a restarted member UP again (their checks: inter 1 s, rise 2). */
const ENDPOINT_UP_MS = 30_000

/** Whether every endpoint that can be read sees `member` UP (one that cannot be read is left to its health checks). */
async function endpointsSeeUp(inv: Inventory, connect: (h: Host) => Promise<Runner>, member: string): Promise<boolean> {
  return (await endpointRows(inv, connect, member)).every((row) => typeof row === 'string' || (row.status ?? '').startsWith('UP'))
}

/**
 * Waits until the endpoints send connections to `member` again: after `ready` HAProxy's checks take it back (about
 * 2 s). Until then the next member must not be drained: the endpoints would have no server to send writes to.
 */
async function waitEndpointsUp(inv: Inventory, connect: (h: Host) => Promise<Runner>, member: string): Promise<boolean> {
  const deadline = Date.now() + ENDPOINT_UP_MS
  for (;;) {
    if (await endpointsSeeUp(inv, connect, member)) return true
    if (Date.now() > deadline) return false
    await sleep(250)
  }
}

/**
 * Sets `member`'s state in every web server's database endpoint (its HAProxy runtime API): `drain` sends new
 * connections to the next synced member and lets its sessions finish, `maint` takes it out of the health checks' hands
 * (and cuts what sessions it still has), `ready` hands it back to the checks. Returns how many endpoints took it; one
 * that cannot be reached is left to its health checks.
 */
async function setEndpoints(
  inv: Inventory,
  connect: (h: Host) => Promise<Runner>,
  member: string,
  state: 'drain' | 'maint' | 'ready',
): Promise<number> {
  if (!inv.mysql?.endpoint) return 0
  let n = 0
  for (const web of inv.hosts.filter((h) => h.roles.includes('web'))) {
    try {
      const c = await connect(web)
      const r = await c.run(`echo ${shq(`set server writer/${member} state ${state}`)} | socat stdio ${DB_ENDPOINT_PATHS.socket}`, {
        check: false,
      })
      if (r.code === 0 && r.stdout.trim() === '') n++
    } catch {
      // Unreachable: its endpoint's health checks still see the member go and come back.
    }
  }
  return n
}

export interface GaleraConvergeOptions {
  /** The database's config and TLS files (a change to one needs that member's restart). */
  files: string[]
  /** Members whose files changed in this run. */
  changed: Set<string>
  step: (host: string, s: string) => void
}

export async function convergeGalera(
  inv: Inventory,
  connect: (h: Host) => Promise<Runner>,
  o: GaleraConvergeOptions,
): Promise<Record<string, string>> {
  const failed: Record<string, string> = {}
  const members = galeraMembers(inv)
  const conns = new Map<string, Runner>()
  const facts = new Map<string, MemberFacts>()
  const unreachable: string[] = []
  for (const h of members) {
    try {
      const c = await connect(h)
      conns.set(h.name, c)
      facts.set(h.name, await memberFacts(c, o.files))
    } catch (error) {
      unreachable.push(h.name)
      failed[h.name] = `unreachable: ${error instanceof Error ? error.message : String(error)}`
    }
  }
  const log = (h: string) => (s: string) => o.step(h, s)

  // Left from the primary/replica topology: its fence and its replication channel.
  for (const [name, f] of facts) {
    const c = conns.get(name)!
    if (f.fenceEnabled) {
      log(name)('stopping the primary/replica fence (in Galera the quorum fences)')
      await c.run(
        'systemctl disable --now foobar-db-fence 2>/dev/null; rm -f /etc/systemd/system/mariadb.service.wants/foobar-db-fence.service; systemctl daemon-reload',
        {check: false},
      )
    }
  }

  const running = [...facts].filter(([, f]) => inPrimary(f)).map(([n]) => n)
  const bootstrapped: string[] = []
  if (running.length === 0) {
    // No member runs the cluster. Start one, on exactly one member, only if every member has been asked.
    if (unreachable.length)
      throw new Failure(
        `no member runs the cluster and ${unreachable.join(', ')} cannot be asked: foobar will not start a cluster that one of them may still run (two clusters would each take writes); bring ${unreachable.length > 1 ? 'them' : 'it'} back, or take ${unreachable.length > 1 ? 'them' : 'it'} out of the inventory`,
      )
    const positions: Position[] = []
    for (const h of members) {
      const f = facts.get(h.name)!
      const c = conns.get(h.name)!
      // A stopped member whose state file says -1 (it crashed): ask InnoDB where it is.
      const recovered = !f.up && f.grastate && f.grastate.seqno < 0 && f.grastate.uuid ? await recoverPosition(c) : undefined
      positions.push(positionOf(h.name, f, recovered))
    }
    const choice = chooseBootstrap(inv, positions)
    const c = conns.get(choice.host)!
    const step = log(choice.host)
    step(`starting a new cluster here: ${choice.why}`)
    // Every other member stops first: a standalone server must not go on taking writes that the cluster will not have.
    for (const h of members.filter((m) => m.name !== choice.host)) {
      if (facts.get(h.name)!.up) {
        log(h.name)('stopping its standalone database (it joins the new cluster next)')
        await conns.get(h.name)!.run('systemctl stop mariadb', {timeoutMs: 300_000})
      }
    }
    await c.run(
      `systemctl stop mariadb; [ -f ${GALERA_STATE_FILE} ] && sed -i 's/^safe_to_bootstrap:.*/safe_to_bootstrap: 1/' ${GALERA_STATE_FILE}; true`,
      {timeoutMs: 300_000},
    )
    // MariaDB's own: starts the service once with --wsrep-new-cluster.
    facts.set(choice.host, await start(c, 'galera_new_cluster', o.files, step))
    bootstrapped.push(choice.host)
  }

  // Members to (re)start, one at a time: those not in the cluster first, then config changes.
  for (const h of members) {
    if (unreachable.includes(h.name) || bootstrapped.includes(h.name)) continue
    const c = conns.get(h.name)!
    const f = facts.get(h.name)!
    const actions = planMember(f, o.changed.has(h.name))
    const step = log(h.name)
    try {
      if (actions.some((a) => a.kind === 'join')) {
        step('joining the cluster (state transfer from a synced member)')
        facts.set(h.name, await start(c, 'systemctl restart mariadb', o.files, step))
      } else if (actions.some((a) => a.kind === 'restart')) {
        // Only with every other reachable member synced: the restart must not cost the quorum.
        const others = members.filter((m) => m !== h && !unreachable.includes(m.name))
        for (const m of others) await waitSynced(conns.get(m.name)!, o.files, 120_000)
        // The endpoints stop sending it new connections first (in-flight ones finish), and take it back once synced.
        // Drain, not maintenance, for that: with `on-marked-down shutdown-sessions` HAProxy cuts the sessions a server
        // going into maintenance still has, a write in flight among them. Maintenance comes once none is left (so
        // that the restart's failing checks change nothing).
        const drained = await setEndpoints(inv, connect, h.name, 'drain')
        try {
          if (drained) {
            step(`the database endpoints on ${drained} web server${drained > 1 ? 's' : ''} send new connections elsewhere`)
            await drain(inv, connect, h.name)
            await setEndpoints(inv, connect, h.name, 'maint')
          }
          step('restarting to load the changed config')
          facts.set(h.name, await start(c, 'systemctl restart mariadb', o.files, step))
        } finally {
          if (drained) await setEndpoints(inv, connect, h.name, 'ready')
        }
        if (drained) {
          step('waiting for the database endpoints to send it connections again')
          if (!(await waitEndpointsUp(inv, connect, h.name)))
            throw new Failure(
              `${h.name}: synced, but the database endpoints did not see it UP within ${ENDPOINT_UP_MS / 1000} s; the other members are not restarted`,
            )
        }
      }
    } catch (error) {
      failed[h.name] = error instanceof Error ? error.message : String(error)
      // The rest waits: a second member down could cost the quorum.
      break
    }
  }

  // The arbitrator: garbd that lost its cluster (every member stopped) does not find the new one by itself.
  const arb = galeraArbitrator(inv)
  const synced1 = members.find((m) => !failed[m.name] && facts.get(m.name) && synced(facts.get(m.name)!))
  if (arb && synced1 && Object.keys(failed).length === 0) {
    const want = members.length + 1
    const size = async () => Number((await memberFacts(conns.get(synced1.name)!, o.files)).status.wsrep_cluster_size ?? 0)
    if ((await size()) < want) {
      try {
        const a = await connect(arb)
        o.step(arb.name, 'restarting the arbitrator: it is not in the cluster')
        await a.run('systemctl restart garb')
        const deadline = Date.now() + 30_000
        while ((await size()) < want) {
          if (Date.now() > deadline)
            throw new Failure(`the arbitrator ${arb.name} did not join the cluster in 30 s; see journalctl -u garb on ${arb.name}`)
          await sleep(500)
        }
      } catch (error) {
        failed[arb.name] = error instanceof Error ? error.message : String(error)
      }
    }
  }

  // Replication from outside the cluster (left from primary/replica) is removed once the member is in the cluster.
  for (const [name, f] of facts) {
    if (f.slaveConfigured && !failed[name]) {
      log(name)('removing replication from outside the cluster')
      await conns.get(name)!.run("mysql --protocol=socket --loose-skip-ssl -e 'STOP ALL SLAVES; RESET SLAVE ALL'", {check: false})
    }
  }
  return failed
}
