import {type Server, createServer} from 'node:http'
import type {AddressInfo} from 'node:net'

/** One notification as Alertmanager's webhook sends it, with when it arrived here. */
export interface Notification {
  at: number
  status: string
  alerts: Array<{status: string; labels: Record<string, string>; startsAt: string; endsAt: string}>
}

/**
 * A webhook receiver on the control machine, on the lab bridge's address (where the lab's hosts reach it): records
 * every notification. Accepts POST only, bodies up to 1 MiB.
 */
export async function webhookReceiver(address = '10.77.0.1'): Promise<{url: string; received: Notification[]; close: () => Promise<void>}> {
  const received: Notification[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (d: string) => {
      body += d
      if (body.length > 1 << 20) req.destroy()
    })
    req.on('end', () => {
      if (req.method !== 'POST') {
        res.writeHead(405).end()
        return
      }
      try {
        const n = JSON.parse(body) as Omit<Notification, 'at'>
        received.push({at: Date.now(), status: n.status, alerts: n.alerts})
        res.writeHead(200).end('ok')
      } catch {
        res.writeHead(400).end('not JSON')
      }
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, address, resolve)
  })
  const {port} = server.address() as AddressInfo
  return {
    url: `http://${address}:${port}/alerts`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

/** The first notification at or after `since` with an alert matching, or undefined. */
export function firstMatching(received: Notification[], since: number, match: (a: Notification['alerts'][number]) => boolean) {
  for (const n of received) {
    if (n.at < since) continue
    const alert = n.alerts.find(match)
    if (alert) return {at: n.at, alert}
  }
  return undefined
}
