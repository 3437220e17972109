/*
 * Monitoring (issue 9): the node exporter on every host, Prometheus and the log collector on the monitoring host,
 * log forwarding, and what `foobar monitor` and verify read from them. The other exporters live with the
 * components they watch (nginx, mysql; HAProxy serves its own endpoint).
 */
export {exporters, mysqldExporter, nginxExporter} from './exporters.js'
export {logs} from './logs.js'
export {monitoringServer, prometheusConfig, prometheusUrl} from './server.js'
export {MONITORING_PATHS, NGINX_STUB_STATUS} from './paths.js'
export {type ScrapeTarget, hostPort, monitoringHost, scrapers} from './targets.js'
