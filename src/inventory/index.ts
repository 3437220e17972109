export {loadInventory, parseInventory} from './loader.js'
export {InventoryError} from './errors.js'
export {selectHosts} from './select.js'
export {type GovernedPort, governedPorts} from './firewall-policy.js'
export type {
  AlertingSettings,
  AppSettings,
  AptSettings,
  DbMembership,
  FirewallSettings,
  HardeningItem,
  HardeningSettings,
  Host,
  Inventory,
  LbSettings,
  MonitoringSettings,
  MysqlSettings,
  PortRule,
  Site,
  SshSettings,
  TlsSettings,
  TlsSource,
  UpgradeSettings,
} from './resolved.js'
export {ROLES, type Role} from './schema.js'
export {sshPort, sshUser} from './resolved.js'
export {SSH_DEFAULTS} from './defaults.js'
export * from './upgrade-windows.js'
