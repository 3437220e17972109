import {request as httpRequest} from 'node:http'
import {request as httpsRequest} from 'node:https'
import {connect as tlsConnect, type ConnectionOptions} from 'node:tls'

/*
 * The control machine's own view of a server: HTTP, HTTPS and TLS handshakes. One implementation each, and every
 * one ends within its timeout (a stalled handshake or a server that never answers cannot hang a command).
 */

export const PROBE_TIMEOUT_MS = 5000

export interface HttpAnswer {
  status: number
  headers: Record<string, unknown>
  body: string
  location?: string
}

/** GET https://address:port/path with SNI and Host set to `servername`, trusting `ca`. */
export function httpsProbe(
  address: string,
  port: number,
  servername: string,
  path: string,
  ca: string,
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<HttpAnswer> {
  return bounded(timeoutMs, (done, fail) => {
    const req = httpsRequest(
      {host: address, port, path, servername, ca, headers: {Host: servername}, timeout: timeoutMs, agent: false},
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c) => (body += c))
        res.on('end', () => done({status: res.statusCode ?? 0, headers: res.headers, body, location: res.headers.location}))
        res.on('error', fail)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', fail)
    req.end()
    return () => req.destroy()
  })
}

/** GET http://address:port/path with the Host header (the body is not read). */
export function httpProbe(address: string, port: number, host: string, path: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<HttpAnswer> {
  return bounded(timeoutMs, (done, fail) => {
    const req = httpRequest({host: address, port, path, headers: {Host: host}, timeout: timeoutMs, agent: false}, (res) => {
      res.resume()
      done({status: res.statusCode ?? 0, headers: res.headers, body: '', location: res.headers.location})
    })
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)))
    req.on('error', fail)
    req.end()
    return () => req.destroy()
  })
}

export interface Handshake {
  protocol: string
  subject: string
  names: string
  serial: string
  validTo: Date
}

/** A TLS handshake; rejects on failure (including certificate verification, unless rejectUnauthorized is false). */
export function tlsHandshake(address: string, port: number, options: ConnectionOptions, timeoutMs = PROBE_TIMEOUT_MS): Promise<Handshake> {
  return bounded(timeoutMs, (done, fail) => {
    const sock = tlsConnect({host: address, port, ...options, timeout: timeoutMs})
    sock.once('secureConnect', () => {
      const c = sock.getPeerCertificate()
      const protocol = sock.getProtocol() ?? 'unknown'
      sock.destroy()
      done({
        protocol,
        subject: String(c.subject?.CN ?? ''),
        names: c.subjectaltname ?? '',
        serial: c.serialNumber ?? '',
        validTo: new Date(c.valid_to),
      })
    })
    sock.once('error', fail)
    sock.once('timeout', () => sock.destroy(new Error(`TLS handshake timed out after ${timeoutMs} ms`)))
    return () => sock.destroy()
  })
}

/** Settles within timeoutMs whatever the socket does (a stalled peer that never triggers `timeout` included). */
function bounded<T>(timeoutMs: number, start: (done: (v: T) => void, fail: (e: Error) => void) => () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false
    const finish = (f: () => void) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      f()
    }
    const stop = start(
      (v) => finish(() => resolve(v)),
      (e) => finish(() => reject(e)),
    )
    // The socket's own timeout counts idle time only; this one bounds the whole exchange.
    const timer = setTimeout(() => finish(() => (stop(), reject(new Error(`no answer within ${timeoutMs} ms`)))), timeoutMs + 1000)
  })
}
