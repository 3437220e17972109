import {mysqlService} from '../mysql/index.js'
import {type Component, type DesiredFile, emptyState, file} from '../types.js'
import {TLS_PATHS} from './profile.js'

export {prepareTlsMaterial, stateDir, type TlsMaterial} from './material.js'

/** Certificates and keys on each host, from the run's TLS material (secret files: never shown in diffs). */
export const tls: Component = {
  name: 'tls',
  appliesTo: (host) => host.roles.some((r) => r === 'web' || r === 'lb') || host.db !== undefined,
  desired: ({inventory, host, material}) => {
    const state = emptyState()
    if (!material) return state
    const files: DesiredFile[] = []
    if (host.roles.includes('web')) {
      files.push(file(TLS_PATHS.cert, material.siteChain, {notify: ['nginx']}))
      files.push(file(TLS_PATHS.key, material.siteKey, {mode: 0o600, secret: true, notify: ['nginx']}))
    }
    if (host.roles.includes('lb')) {
      files.push(file(TLS_PATHS.haproxyBundle, material.siteChain + material.siteKey, {mode: 0o600, secret: true, notify: ['haproxy']}))
      files.push(file(TLS_PATHS.backendCa, material.backendCa, {notify: ['haproxy']}))
    }
    const db = material.dbCerts[host.name]
    if (db) {
      const svc = mysqlService(inventory)
      files.push(file(TLS_PATHS.dbCa, material.internalCa, {notify: [svc]}))
      files.push(file(TLS_PATHS.dbCert, db.cert, {notify: [svc]}))
      files.push(file(TLS_PATHS.dbKey, db.key, {mode: 0o640, group: 'mysql', secret: true, notify: [svc]}))
    }
    state.files = files
    return state
  },
}
