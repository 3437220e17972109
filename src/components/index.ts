import type {TlsMaterial} from '../engine/contract.js'
import {
  type DesiredOptions,
  type HostDesired,
  defineStack,
  desiredState as desiredOf,
  prepareMaterial as materialOf,
} from '../engine/desired.js'
import type {Host, Inventory} from '../inventory/index.js'
import {alerting} from './alerting/index.js'
import {app} from './app/index.js'
import {appDb} from './app-db/index.js'
import {base} from './base/index.js'
import {dbEndpoint} from './db-endpoint/index.js'
import {firewall} from './firewall/index.js'
import {haproxy} from './haproxy/index.js'
import {hardening} from './hardening/index.js'
import {keepalived} from './keepalived/index.js'
import {exporters, logs, monitoringServer} from './monitoring/index.js'
import {mysql, mysqlConfigPath, replication} from './mysql/index.js'
import {galeraArbitratorComponent, galeraComponent} from './galera/index.js'
import {nginx} from './nginx/index.js'
import {tls} from './tls/index.js'
import {upgrades} from './upgrades/index.js'

/**
 * The registry: one line per component. The order of steps comes from each component's `after`; this list only
 * breaks ties (and orders the monitoring server's jobs).
 */
export const STACK = defineStack([
  base,
  tls,
  exporters,
  app,
  nginx,
  haproxy,
  keepalived,
  mysql,
  replication,
  galeraComponent(mysqlConfigPath),
  galeraArbitratorComponent,
  appDb,
  dbEndpoint,
  logs,
  alerting,
  monitoringServer,
  hardening,
  upgrades,
  firewall,
])

/** The stack's desired state of one host (the engine's, over the registered components). */
export const desiredState = (inventory: Inventory, host: Host, options?: DesiredOptions): HostDesired =>
  desiredOf(STACK, inventory, host, options)

/** The run's key material for the registered components. */
export const prepareMaterial = (inventory: Inventory): TlsMaterial => materialOf(STACK, inventory)
