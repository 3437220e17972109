import {request as httpRequest} from 'node:http'
import {connect as tlsConnect} from 'node:tls'
import {PORTS} from '../components/ports.js'
import {isUp, serverStates} from '../components/haproxy/runtime.js'
import type {Host, Inventory} from '../inventory/index.js'
import type {Connection} from '../remote/connection.js'
import {httpsProbe} from './verify.js'

type Result = {ok: boolean; detail: string}
export interface WebCheck {
  name: string
  run: () => Promise<Result>
}

function httpProbe(address: string, host: string, path: string): Promise<{status: number; location?: string}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({host: address, port: PORTS.http, path, headers: {Host: host}, timeout: 5000, agent: false}, (res) => {
      res.resume()
      resolve({status: res.statusCode ?? 0, location: res.headers.location})
    })
    req.on('timeout', () => req.destroy(new Error('timed out')))
    req.on('error', reject)
    req.end()
  })
}

/** Does the server accept a handshake capped at TLS 1.1? (The client allows the old protocols explicitly.) */
function acceptsOldTls(address: string, servername: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const sock = tlsConnect({host: address, port: PORTS.https, servername, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0', rejectUnauthorized: false, timeout: 5000})
    sock.once('secureConnect', () => {
      const v = sock.getProtocol() ?? 'old TLS'
      sock.destroy()
      resolve(v)
    })
    sock.once('error', () => resolve(undefined))
    sock.once('timeout', () => {
      sock.destroy()
      resolve(undefined)
    })
  })
}

function certificate(address: string, servername: string, ca: string): Promise<{subject: string; names: string; daysLeft: number; serial: string}> {
  return new Promise((resolve, reject) => {
    const sock = tlsConnect({host: address, port: PORTS.https, servername, ca, timeout: 5000})
    sock.once('secureConnect', () => {
      const c = sock.getPeerCertificate()
      sock.destroy()
      resolve({subject: String(c.subject?.CN ?? ''), names: c.subjectaltname ?? '', daysLeft: Math.floor((new Date(c.valid_to).getTime() - Date.now()) / 86_400_000), serial: c.serialNumber})
    })
    sock.once('error', reject)
  })
}

/** The web tier as a client sees it through the LB, and as HAProxy sees its backends. */
export function webTierChecks(inv: Inventory, lb: Host, conn: Connection, ca: string): WebCheck[] {
  const domain = inv.site.domain
  const webs = inv.hosts.filter((h) => h.roles.includes('web')).map((h) => h.name)
  return [
    {
      name: 'https: every backend answers',
      run: async () => {
        const seen = new Set<string>()
        for (let i = 0; i < webs.length * 4 && seen.size < webs.length; i++) {
          const r = await httpsProbe(lb.address, PORTS.https, domain, lb.lb.healthCheck, ca)
          if (r.status !== 200) return {ok: false, detail: `HTTP ${r.status}`}
          seen.add(r.body.trim().replace(/^ok /, ''))
        }
        const missing = webs.filter((w) => !seen.has(w))
        return missing.length ? {ok: false, detail: `no answer from ${missing.join(', ')}`} : {ok: true, detail: `200 from ${[...seen].sort().join(', ')}`}
      },
    },
    {
      name: 'certificate valid for the site',
      run: async () => {
        const c = await certificate(lb.address, domain, ca)
        return c.daysLeft > 0 ? {ok: true, detail: `${c.names}, serial ${c.serial}, ${c.daysLeft} days left`} : {ok: false, detail: `expired (${c.daysLeft} days)`}
      },
    },
    {
      name: 'http redirects to https',
      run: async () => {
        const r = await httpProbe(lb.address, domain, '/x')
        const want = `https://${domain}/x`
        return r.status === 301 && r.location === want ? {ok: true, detail: `301 -> ${want}`} : {ok: false, detail: `HTTP ${r.status} -> ${r.location ?? '(no Location)'}`}
      },
    },
    {
      name: 'hsts',
      run: async () => {
        const r = await httpsProbe(lb.address, PORTS.https, domain, '/', ca)
        const h = r.headers['strict-transport-security']
        if (!lb.tls.hsts.enabled) return {ok: true, detail: 'off in the inventory'}
        return typeof h === 'string' && h.includes(`max-age=${lb.tls.hsts.maxAge}`) ? {ok: true, detail: h} : {ok: false, detail: `header: ${String(h)}`}
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
        return plain.length ? {ok: false, detail: `plaintext to ${plain.join(', ')}`} : {ok: true, detail: 'ssl verify required on every server'}
      },
    },
  ]
}
