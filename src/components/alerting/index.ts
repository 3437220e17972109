/*
 * Alerting (issue 19): Prometheus's alert rules, Alertmanager with the inventory's receivers, and the blackbox
 * exporter's probes of the site (the synthetic user), all on the monitoring host; `foobar monitor alerts` and
 * `monitor test-alert` read and exercise them (live.ts). Prometheus's own config (monitoring/server.ts) takes the
 * rule file, the Alertmanager and the probe jobs from prometheus.ts.
 */
import {type Component, type DesiredFile, file} from '../../engine/contract.js'
import type {Host} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {hostPort} from '../../util/address.js'
import {shq} from '../../util/shell.js'
import {PORTS} from '../ports.js'
import {alertingChecks} from './checks.js'
import {alertmanagerConfig, blackboxConfig, smtpPassword} from './configs.js'
import {ALERTING_PATHS as P, BLACKBOX_ADDRESS, alertingOn, alertmanagerUrl} from './paths.js'
import {alertRules} from './rules.js'

export {ALERTING_PATHS, TEST_ALERT, alertingOn, alertmanagerUrl} from './paths.js'
export {probes} from './probes.js'
export {alertRules, ruleNames} from './rules.js'
export {alertmanagerConfig, blackboxConfig} from './configs.js'

const ALERTMANAGER = 'prometheus-alertmanager'
const BLACKBOX = 'prometheus-blackbox-exporter'

const isMonitoring = (h: Host) => h.roles.includes('monitoring')

/** On the monitoring host: Alertmanager (private address, admin networks only), the blackbox exporter (loopback), the rule file Prometheus loads. */
export const alerting: Component = {
  name: 'alerting',
  after: ['exporters'],
  appliesTo: (host, inv) => alertingOn(inv) && isMonitoring(host),
  ports: ({host}) => [
    {port: PORTS.alertmanager, proto: 'tcp', from: host.firewall.adminCidrs, comment: 'alertmanager from admin networks'},
  ],
  secrets: ({inventory}) =>
    inventory.alerting.receivers.email?.password
      ? [{field: 'alerting.receivers.email.password', ref: inventory.alerting.receivers.email.password}]
      : [],
  desired: ({inventory, host, material}) => {
    const password = smtpPassword(inventory, material ? 'read' : 'placeholder')
    const listen = hostPort(host, PORTS.alertmanager)
    const files: DesiredFile[] = [
      file(P.rules, alertRules(inventory), {notify: ['prometheus'], validate: {mode: 'candidate', command: 'promtool check rules {}'}}),
      ...(password === undefined
        ? []
        : [file(P.smtpPassword, `${password}\n`, {mode: 0o640, group: 'prometheus', secret: true, notify: [ALERTMANAGER]})]),
      file(P.alertmanagerConfig, alertmanagerConfig(inventory), {
        mode: 0o640,
        group: 'prometheus',
        notify: [ALERTMANAGER],
        validate: {mode: 'candidate', command: 'amtool check-config {}'},
      }),
      file(
        P.alertmanagerDefaults,
        renderTemplate('alerting/alertmanager.default', {config: P.alertmanagerConfig, storage: P.alertmanagerStorage, listen}),
        {notify: [ALERTMANAGER]},
      ),
      // The probes verify the site's chain with the CA HAProxy trusts for the backends (foobar's internal CA, or the
      // ACME/files chain's): written only in a real run, like the other certificates.
      ...(material ? [file(P.probeCa, material.backendCa, {notify: [BLACKBOX]})] : []),
      file(P.blackboxConfig, blackboxConfig(inventory), {
        notify: [BLACKBOX],
        validate: {mode: 'candidate', command: `${BLACKBOX} --config.check --config.file={}`},
      }),
      file(P.blackboxDefaults, renderTemplate('alerting/blackbox.default', {config: P.blackboxConfig, listen: BLACKBOX_ADDRESS}), {
        notify: [BLACKBOX],
      }),
    ]
    return {
      packages: [ALERTMANAGER, BLACKBOX],
      files,
      absent: [],
      services: [
        // Restart: the listen addresses are read at start only.
        {name: ALERTMANAGER, onChange: 'restart', health: `curl -fsS -o /dev/null ${shq(`${alertmanagerUrl(host)}/-/ready`)}`},
        {name: BLACKBOX, onChange: 'restart', health: `curl -fsS -o /dev/null ${shq(`http://${BLACKBOX_ADDRESS}/metrics`)}`},
      ],
    }
  },
  checks: (ctx) => alertingChecks(ctx),
}
