import type {Check, CheckContext} from '../../engine/contract.js'
import {httpProbe, httpsProbe, tlsHandshake} from '../../util/probes.js'
import {PORTS} from '../ports.js'
import {isUp, serverStates} from './runtime.js'

/** Does the server accept a handshake capped at TLS 1.1? (The client allows the old protocols explicitly.) */
async function acceptsOldTls(address: string, servername: string): Promise<string | undefined> {
  try {
    const h = await tlsHandshake(address, PORTS.https, {
      servername,
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT@SECLEVEL=0',
      rejectUnauthorized: false,
    })
    return h.protocol
  } catch {
    return undefined
  }
}

/** The web tier as a client sees it through the LB, and as HAProxy sees its backends. */
export function webTierChecks(ctx: CheckContext): Check[] {
  const {inventory: inv, host: lb, runner: conn} = ctx
  const ca = ctx.material.backendCa
  const domain = inv.site.domain
  const webs = inv.hosts.filter((h) => h.roles.includes('web')).map((h) => h.name)
  return [
    {
      name: 'https: every backend answers',
      run: async () => {
        if (inv.app) {
          // The inventory's own app does not say which server answered (the default app does): every answer 200, and
          // each backend's own check is HAProxy's (haproxy backends up).
          const n = webs.length * 2
          for (let i = 0; i < n; i++) {
            const r = await httpsProbe(lb.address, PORTS.https, domain, lb.lb.healthCheck, ca)
            if (r.status !== 200) return {ok: false, detail: `${lb.lb.healthCheck}: HTTP ${r.status}`}
          }
          return {ok: true, detail: `${lb.lb.healthCheck}: 200 on ${n} requests (each backend: haproxy backends up)`}
        }
        const seen = new Set<string>()
        for (let i = 0; i < webs.length * 4 && seen.size < webs.length; i++) {
          const r = await httpsProbe(lb.address, PORTS.https, domain, lb.lb.healthCheck, ca)
          if (r.status !== 200) return {ok: false, detail: `HTTP ${r.status}`}
          seen.add(r.body.trim().replace(/^ok /, ''))
        }
        const missing = webs.filter((w) => !seen.has(w))
        return missing.length
          ? {ok: false, detail: `no answer from ${missing.join(', ')}`}
          : {ok: true, detail: `200 from ${[...seen].sort().join(', ')}`}
      },
    },
    {
      name: 'certificate valid for the site',
      run: async () => {
        const c = await tlsHandshake(lb.address, PORTS.https, {servername: domain, ca})
        const daysLeft = Math.floor((c.validTo.getTime() - Date.now()) / 86_400_000)
        return daysLeft > 0
          ? {ok: true, detail: `${c.names}, serial ${c.serial}, ${daysLeft} days left`}
          : {ok: false, detail: `expired (${daysLeft} days)`}
      },
    },
    {
      name: 'http redirects to https',
      run: async () => {
        const r = await httpProbe(lb.address, PORTS.http, domain, '/x')
        const want = `https://${domain}/x`
        return r.status === 301 && r.location === want
          ? {ok: true, detail: `301 -> ${want}`}
          : {ok: false, detail: `HTTP ${r.status} -> ${r.location ?? '(no Location)'}`}
      },
    },
    {
      name: 'hsts',
      run: async () => {
        const r = await httpsProbe(lb.address, PORTS.https, domain, '/', ca)
        const h = r.headers['strict-transport-security']
        if (!lb.tls.hsts.enabled) return {ok: true, detail: 'off in the inventory'}
        return typeof h === 'string' && h.includes(`max-age=${lb.tls.hsts.maxAge}`)
          ? {ok: true, detail: h}
          : {ok: false, detail: `header: ${String(h)}`}
      },
    },
    {
      name: 'tls 1.0/1.1 refused',
      run: async () => {
        const v = await acceptsOldTls(lb.address, domain)
        return v ? {ok: false, detail: `accepted ${v}`} : {ok: true, detail: 'refused'}
      },
    },
    {
      name: 'haproxy backends up',
      run: async () => {
        const states = await serverStates(conn)
        const down = webs.filter((w) => !states.some((s) => s.name === w && isUp(s)))
        return down.length ? {ok: false, detail: `not UP: ${down.join(', ')}`} : {ok: true, detail: `${webs.length} UP`}
      },
    },
    {
      name: 'lb to backends over tls',
      run: async () => {
        const states = await serverStates(conn)
        const plain = states.filter((s) => !s.useSsl).map((s) => s.name)
        if (!lb.lb.reencrypt) return {ok: false, detail: 'lb.reencrypt is off: plaintext behind the load balancer'}
        return plain.length
          ? {ok: false, detail: `plaintext to ${plain.join(', ')}`}
          : {ok: true, detail: 'ssl verify required on every server'}
      },
    },
  ]
}
