/** Well-known ports foobar uses. Exporters listen on the host's private address only. */
export const PORTS = {
  http: 80,
  https: 443,
  app: 8080,
  nginxStatus: 8081,
  haproxyStats: 8404,
  haproxyMetrics: 8405,
  nodeExporter: 9100,
  nginxExporter: 9113,
  mysqldExporter: 9104,
  prometheus: 9090,
  alertmanager: 9093,
  /** The blackbox exporter: on the monitoring host's loopback only (Prometheus asks it there). */
  blackbox: 9115,
  syslogTls: 6514,
  /** Each host's automatic-upgrade status, for the hosts sharing a role with it (components/upgrades). */
  upgradeStatus: 9731,
} as const
