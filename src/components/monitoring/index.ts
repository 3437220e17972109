/*
 * Monitoring (issue 9): exporters on every host, Prometheus and the log collector on the monitoring host, log
 * forwarding, and what `foobar monitor` and verify read from them.
 */
export {exporters} from './exporters.js'
export {logs} from './logs.js'
export {monitoringServer, prometheusConfig, prometheusUrl} from './server.js'
export {MONITORING_PATHS, NGINX_STUB_STATUS} from './paths.js'
export {type Job, type ScrapeTarget, hostTargets, monitoringHost, scrapeTargets} from './targets.js'
