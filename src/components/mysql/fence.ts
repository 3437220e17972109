import {createHmac} from 'node:crypto'
import {type ComponentState, type DesiredFile, file} from '../../engine/contract.js'
import type {Host, Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {TLS_PATHS} from '../tls/profile.js'

/*
 * Fencing (issue 17): no database host that is not the designated writer ever takes writes. Every mysqld starts
 * read-only (the same config on every host); foobar-db-fence lifts that on the designated writer only, and only once
 * another database host confirms that no later promotion happened. The designation is a replicated row,
 * foobar_meta.writer (id 1: generation, writer), written by `provision` on the first primary and by `db promote`
 * with a higher generation; a host fenced by a promotion also carries a marker file, so it stays read-only even if
 * its peers cannot be asked. The peers are asked over MySQL with TLS verified against foobar's internal CA, as an
 * account that may only read that table.
 */

export const FENCE = {
  service: 'foobar-db-fence',
  script: '/usr/local/lib/foobar/db-fence',
  unit: '/etc/systemd/system/foobar-db-fence.service',
  cnf: '/etc/foobar/db-fence.cnf',
  /** Written by `db promote` (and by the fence itself when it sees a later generation): stay read-only. */
  marker: '/var/lib/foobar/db-fenced',
  user: 'foobar_fence',
  database: 'foobar_meta',
} as const

/** The fence account's password, derived from the replication secret (no second secret to manage). */
export function fencePassword(replicationPassword: string): string {
  return createHmac('sha256', replicationPassword).update('foobar-db-fence').digest('hex').slice(0, 32)
}

export function mysqlService(inv: Inventory): string {
  return inv.mysql?.engine === 'mysql' ? 'mysql' : 'mariadb'
}

export const dbPeers = (inv: Inventory, host: Host): Host[] => inv.hosts.filter((h) => h.db !== undefined && h !== host)

export function fenceState(inv: Inventory, host: Host, svc: string, mode: 'read' | 'placeholder'): ComponentState {
  const mysql = inv.mysql!
  const peers = dbPeers(inv, host)
  const files: DesiredFile[] = [
    file(
      FENCE.script,
      renderTemplate('mysql/db-fence', {
        host: host.name,
        peers: peers.map((p) => p.address).join(' '),
        port: mysql.port,
        fencedMarker: FENCE.marker,
        fenceCnf: FENCE.cnf,
      }),
      {mode: 0o755, notify: [FENCE.service], validate: {mode: 'candidate', command: 'sh -n {}'}},
    ),
    file(FENCE.unit, renderTemplate('mysql/foobar-db-fence.service', {host: host.name, db: svc, script: FENCE.script}), {
      notify: [FENCE.service],
    }),
  ]
  if (peers.length > 0 && mysql.replicationPassword) {
    const password =
      mode === 'read' ? fencePassword(readSecret(mysql.replicationPassword, 'mysql.replication_password')) : 'secret-not-read-for-render'
    files.push(
      file(
        FENCE.cnf,
        `# Managed by foobar: the fence's account, to ask the other database hosts who the writer is.\n[client]\nuser=${FENCE.user}\npassword=${password}\nssl-ca=${TLS_PATHS.dbCa}\nssl-verify-server-cert\n`,
        {mode: 0o600, secret: true, notify: [FENCE.service]},
      ),
    )
  }
  return {packages: [], files, absent: [], services: [{name: FENCE.service, onChange: 'restart'}]}
}
