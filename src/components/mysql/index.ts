import type {Component, LiveAction} from '../../engine/contract.js'
import {emptyState, file, leafKey} from '../../engine/contract.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {hostGroup} from '../firewall/rules.js'
import {mysqldExporter} from '../monitoring/exporters.js'
import {PORTS} from '../ports.js'
import {TLS_PATHS} from '../tls/profile.js'
import {databaseChecks} from './checks.js'
import {fenceState, mysqlService} from './fence.js'
import {type DbAction, type FenceAction, dbFactsScript, parseDbFacts, planFencing, planReplication} from './replication.js'
import {convergeReplication} from './replicate.js'
import {FENCE} from './fence.js'
import {GALERA_RESTART, clusterAddress, galeraArbitrator, galeraMembers, isGalera, nodeAddress} from '../galera/cluster.js'
import {galeraPorts} from '../galera/index.js'

export function mysqlConfigPath(inv: Inventory): string {
  return inv.mysql?.engine === 'mysql' ? '/etc/mysql/mysql.conf.d/60-foobar.cnf' : '/etc/mysql/mariadb.conf.d/60-foobar.cnf'
}

export {mysqlService} from './fence.js'

/** Who may connect to a database host: every web and database host (but itself). */
const dbClients = hostGroup((h) => h.roles.includes('web') || h.roles.includes('db'))

/**
 * MariaDB/MySQL on database hosts: unique server_id, ROW binlog, GTID, semi-synchronous replication, TLS with a
 * certificate from foobar's internal CA, fencing (every host starts read-only; see fence.ts); the mysqld exporter
 * where monitoring is on.
 */
export const mysql: Component = {
  name: 'mysql',
  after: ['base'],
  appliesTo: (host: Host) => host.db !== undefined,
  certificates: ({host}) => [{name: 'db', sans: [`DNS:${host.name}`, `IP:${host.address}`]}],
  ports: ({inventory, host}) => {
    if (!inventory.mysql) return []
    const peers = dbClients.except(inventory, host)
    return [
      ...(peers.length
        ? [{port: inventory.mysql.port, proto: 'tcp' as const, from: peers, comment: 'mysql from web and database hosts'}]
        : []),
      ...(isGalera(inventory) ? galeraPorts(inventory, host) : []),
    ]
  },
  targets: ({host}) => (host.monitoring.enabled ? [{job: 'mysqld', what: 'mysqld exporter', port: PORTS.mysqldExporter}] : []),
  // The mysqld exporter's account (MariaDB without one: unix_socket, no secret); the fence's account derives from
  // the replication secret.
  secrets: ({inventory, host}) => [
    ...(host.monitoring.enabled && inventory.mysql?.monitorPassword
      ? [{field: 'mysql.monitor_password', ref: inventory.mysql.monitorPassword}]
      : []),
    ...(!isGalera(inventory) && inventory.mysql?.replicationPassword && inventory.hosts.some((h) => h.db && h !== host)
      ? [{field: 'mysql.replication_password', ref: inventory.mysql.replicationPassword}]
      : []),
  ],
  desired: ({inventory, host, material}) => {
    const engine = inventory.mysql?.engine ?? 'mariadb'
    const mariadb = engine === 'mariadb'
    const svc = mysqlService(inventory)
    const leaf = material?.leaves[leafKey('db', host.name)]
    // Secrets are read only for a real run (TLS material present); `foobar render` never writes secret files.
    const exporter = host.monitoring.enabled ? mysqldExporter(inventory, host, svc, material ? 'read' : 'placeholder') : undefined
    const galera = isGalera(inventory)
    // Galera: the quorum fences, and a member restarts only in foobar's rolling step (never with the others).
    const fence = galera ? emptyState() : fenceState(inventory, host, svc, material ? 'read' : 'placeholder')
    const notify = galera ? [GALERA_RESTART] : [svc]
    const semiSync =
      mariadb && !galera && inventory.mysql!.semiSync.enabled && inventory.mysql!.replicas.length > 0
        ? inventory.mysql!.semiSync
        : undefined
    const arbitrator = galeraArbitrator(inventory)
    const members = galeraMembers(inventory)
    return {
      packages: [
        mariadb ? 'mariadb-server' : 'mysql-server',
        ...(galera ? ['galera-4', 'mariadb-backup', 'socat'] : []),
        ...(exporter?.packages ?? []),
      ],
      files: [
        ...(material && leaf
          ? [
              file(TLS_PATHS.dbCa, material.internalCa, {notify}),
              file(TLS_PATHS.dbCert, leaf.cert, {notify}),
              file(TLS_PATHS.dbKey, leaf.key, {mode: 0o640, group: 'mysql', secret: true, notify}),
            ]
          : []),
        file(
          mysqlConfigPath(inventory),
          renderTemplate('mysql/foobar.cnf', {
            host: host.name,
            engine,
            mariadb,
            section: mariadb ? 'mariadbd' : 'mysqld',
            semiSync,
            galera: galera && {
              members: members.map((m) => m.name).join(', '),
              arbitrator: arbitrator?.name,
              clusterName: inventory.mysql!.clusterName,
              peers: clusterAddress(inventory),
              nodeAddress: nodeAddress(host),
            },
            bindAddress: host.address,
            port: inventory.mysql?.port ?? 3306,
            serverId: host.db!.serverId,
            caFile: TLS_PATHS.dbCa,
            certFile: TLS_PATHS.dbCert,
            keyFile: TLS_PATHS.dbKey,
          }),
          // Option changes (bind address, server_id) need a restart; MariaDB has no config reload.
          {notify},
        ),
        ...fence.files,
        ...(exporter?.files ?? []),
      ],
      // Galera: the primary/replica fence goes (its unit is stopped by the galera step).
      absent: galera ? [FENCE.script, FENCE.unit, FENCE.cnf] : [],
      services: [
        ...(galera ? [] : [{name: svc, onChange: 'restart' as const, health: 'mysqladmin --loose-skip-ssl --connect-timeout=5 ping'}]),
        ...fence.services,
        ...(exporter?.services ?? []),
      ],
    }
  },
  checks: (ctx) => databaseChecks(ctx),
}

function describeFencing(a: FenceAction): string {
  switch (a.kind) {
    case 'fence-users':
      return `fence account for ${a.hosts.join(', ')} (TLS required, reads the writer record only)`
    case 'designate':
      return `record ${a.writer} as the designated writer (generation 1)`
    case 'unfence':
      return `take writes: the designated writer is read-only (generation ${a.generation})`
    case 'fence':
      return `fence: read-only (${a.why})`
  }
}

function describeReplication(a: DbAction): string {
  switch (a.kind) {
    case 'users':
      return `replication user for ${a.hosts.join(', ')} (TLS required)`
    case 'seed':
      return `seed from ${a.from} and replicate (GTID, TLS)`
    case 'reseed':
      return `re-seed from ${a.from} (its unacknowledged transactions are discarded): ${a.why}`
    case 'rejoin':
      return `replicate from ${a.from}: ${a.why} (re-seeded from ${a.from} if it has transactions ${a.from} never had: never acknowledged, discarded)`
    case 'configure':
      return `replicate from ${a.from}: ${a.why}`
  }
}

/**
 * GTID replication over verified TLS between the database hosts: least-privilege users on the primary, new or
 * empty replicas seeded by a dump streamed over SSH, a running replica never re-seeded. Applied after every host's
 * own changes, the primary first; it never takes a web server out of rotation.
 */
export const replication: Component = {
  name: 'replication',
  after: ['mysql'],
  rolling: 'none',
  appliesTo: (host) => host.db !== undefined,
  // The replication account's password: the live step and verify's replication checks read it.
  secrets: ({inventory}) =>
    inventory.mysql?.replicas.length && !isGalera(inventory)
      ? [{field: 'mysql.replication_password', ref: inventory.mysql.replicationPassword}]
      : [],
  live: {
    prepare: (inventory) => {
      const mysql = inventory.mysql
      if (!mysql || mysql.replicas.length === 0 || isGalera(inventory)) return undefined
      // Read before anything is touched (a missing secret is bad input); kept in memory, sent only on stdin.
      const password = readSecret(mysql.replicationPassword, 'mysql.replication_password')
      return {
        script: () => dbFactsScript(mysql.replicationUser),
        plan: (ctx, lines): LiveAction[] => {
          const facts = parseDbFacts(lines, mysql.replicationUser)
          // Checked by the database's own verify checks (row replicated, replica read-only, TLS, one writer).
          const fencing = planFencing(inventory, ctx.host, facts, password).map((a) => ({
            kind: a.kind,
            summary: describeFencing(a),
            data: {...a},
            ownCheck: true,
          }))
          const replication = planReplication(inventory, ctx.host, facts, password).map((a) => ({
            kind: a.kind,
            summary: describeReplication(a),
            data: {...a},
            ownCheck: true,
          }))
          return ctx.host.db?.role === 'primary' ? [...fencing, ...replication] : [...replication, ...fencing]
        },
        converge: (ctx) => convergeReplication(inventory, ctx.hosts, ctx.connect, password, ctx.step),
      }
    },
  },
}
