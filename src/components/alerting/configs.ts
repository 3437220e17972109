import type {Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {readSecret} from '../../secrets/index.js'
import {UserError} from '../../util/errors.js'
import {ALERTING_PATHS as P, TEST_ALERT} from './paths.js'

/** The SMTP password passes only as a file Alertmanager reads: one line, bounded. */
const SMTP_PASSWORD = /^[^\s\u0000-\u001f\u007f]{1,256}$/

export function smtpPassword(inv: Inventory, mode: 'read' | 'placeholder'): string | undefined {
  const email = inv.alerting.receivers.email
  if (!email?.password) return undefined
  if (mode === 'placeholder') return 'secret-not-read-for-render'
  const value = readSecret(email.password, 'alerting.receivers.email.password')
  if (!SMTP_PASSWORD.test(value))
    throw new UserError(
      'alerting.receivers.email.password: must be 1-256 characters without spaces or control characters (the secret itself is not shown)',
    )
  return value
}

export function alertmanagerConfig(inv: Inventory): string {
  const {webhook, email} = inv.alerting.receivers
  return renderTemplate('alerting/alertmanager.yml', {
    domain: inv.site.domain,
    route: inv.alerting.route,
    testAlert: TEST_ALERT,
    webhook: webhook ?? false,
    email: email ? {...email, username: email.username ?? false, password: undefined} : false,
    passwordFile: P.smtpPassword,
  })
}

/** The site probe expects HSTS when the load balancers send it (HAProxy sets the header, per load balancer's tls.hsts). */
export function blackboxConfig(inv: Inventory): string {
  const lbs = inv.hosts.filter((h) => h.roles.includes('lb'))
  const hsts = lbs.length > 0 && lbs.every((h) => h.tls.hsts.enabled)
  return renderTemplate('alerting/blackbox.yml', {domain: inv.site.domain, caFile: P.probeCa, hsts})
}
