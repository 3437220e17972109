/**
 * Your own app (issue 21, item 3): a tiny HTTP server on each web server stands in for the site's app. The lab
 * inventory with `app: {upstream: 127.0.0.1:8082, health: /health}` is provisioned over the default app as a
 * rolling change (through the LB, 0 failed requests); the page comes from the user app; HAProxy's check asks the
 * app's /health (a server whose /health fails, / still answering, goes DOWN while the other serves); the default
 * app is gone. Afterwards the lab inventory's default app is provisioned back and the user app stopped.
 */
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {DEFAULT_APP_PATHS} from '../../src/components/app/index.js'
import {type ServerState, isUp, parseServersState} from '../../src/components/haproxy/runtime.js'
import {NGINX_SITE} from '../../src/components/nginx/index.js'
import {httpsProbe} from '../../src/util/probes.js'
import {foobar, foobarAsync, json, sleep, variant, provisionedLab} from './support/cli.js'
import {LAB_INVENTORY, labIsUp, ssh, sshOk} from './support/lab.js'

const WEBS = ['web1', 'web2']
const UNIT = 'foobar-test-userapp'
const SCRIPT = `/run/${UNIT}.py`
/** While this file exists on a web server, its user app answers /health with 503 (and every other path with 200). */
const SICK = `/run/${UNIT}.sick`
const PORT = 8082

interface Check {
  host: string
  check: string
  ok: boolean
  detail: string
}

/** The user app: names its host on every page; /health is 200 unless SICK exists. */
const USER_APP = `import os, socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
HOST = socket.gethostname()
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            sick = os.path.exists("${SICK}")
            code, body = (503, "sick\\n") if sick else (200, "healthy " + HOST + "\\n")
        else:
            code, body = 200, "user app on " + HOST + "\\n"
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", ${PORT}), Handler).serve_forever()
`

async function startUserApp(host: string): Promise<void> {
  const b64 = Buffer.from(USER_APP).toString('base64')
  await sshOk(
    host,
    `echo ${b64} | base64 -d | sudo tee ${SCRIPT} >/dev/null && sudo rm -f ${SICK} && ` +
      `{ sudo systemctl stop ${UNIT} 2>/dev/null; sudo systemctl reset-failed ${UNIT} 2>/dev/null; true; } && ` +
      `sudo systemd-run --quiet --unit=${UNIT} --property=DynamicUser=yes /usr/bin/python3 ${SCRIPT} && ` +
      `for i in $(seq 50); do curl -fsS -m 2 http://127.0.0.1:${PORT}/health && exit 0; sleep 0.1; done; exit 1`,
  )
}

async function lbStates(): Promise<ServerState[]> {
  return parseServersState(await sshOk('lb1', `echo 'show servers state web' | sudo socat stdio /run/haproxy/admin.sock`))
}

async function waitState(server: string, want: (s: ServerState) => boolean, what: string, timeoutMs = 30_000): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    const s = (await lbStates()).find((x) => x.name === server)
    if (s && want(s)) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`${server} not ${what} after ${timeoutMs} ms: ${JSON.stringify(s)}`)
    await sleep(500)
  }
}

describe.skipIf(!labIsUp())('your own app', () => {
  let domain: string
  let ca: string
  let appInventory: string

  beforeAll(async () => {
    // The lab as the files before leave it (a no-op after 30-web): the default app behind the LB.
    ;({domain, ca} = await provisionedLab())
    // lab.yml writes lb.health_check: /healthz; the app's own health path replaces it (both written apart is an error).
    appInventory = variant('user-app', (t) =>
      t
        .replace('  health_check: /healthz\n', '')
        .replace('\nhosts:\n', `\napp:\n  upstream: 127.0.0.1:${PORT}\n  health: /health\n\nhosts:\n`),
    )
    await Promise.all(WEBS.map(startUserApp))
  })

  afterAll(async () => {
    // Back to the lab inventory's default app for the files after this one, then the user app goes.
    for (const h of WEBS) await ssh(h, `sudo rm -f ${SICK}`)
    const r = foobar(['provision', '-i', LAB_INVENTORY, '--yes'])
    for (const h of WEBS) await ssh(h, `sudo systemctl stop ${UNIT}; sudo systemctl reset-failed ${UNIT} 2>/dev/null; sudo rm -f ${SCRIPT}`)
    expect(r.code, r.stdout + r.stderr).toBe(0)
    expect((await httpsProbe('10.77.0.11', 443, domain, '/healthz', ca)).body).toMatch(/^ok web[12]/)
  })

  test('the switch to the user app is a rolling change gated on its /health, with 0 failed requests through the LB', async () => {
    let ok = 0
    const failed: string[] = []
    let stop = false
    const loop = (async () => {
      while (!stop && ok + failed.length < 3000) {
        const r = await httpsProbe('10.77.0.11', 443, domain, '/', ca).catch((e: Error) => ({status: 0, body: e.message}))
        if (r.status === 200) ok++
        else failed.push(`HTTP ${r.status} ${r.body.slice(0, 60)}`)
      }
    })()
    const r = await foobarAsync(['provision', '-i', appInventory, '--yes'])
    stop = true
    await loop
    console.log(`switch to the user app: ${ok} requests ok, ${failed.length} failed through the LB`)
    expect(r.code, r.out).toBe(0)
    const at = (s: string) => r.out.indexOf(s)
    expect(at('web1: draining in lb1')).toBeGreaterThan(-1)
    expect(at('web1: draining in lb1')).toBeLessThan(at('web1: health gate'))
    expect(at('web1: health gate')).toBeLessThan(at('web2: draining in lb1'))
    expect(at('stopping the default app')).toBeGreaterThan(-1)
    expect(failed).toEqual([])
    expect(ok).toBeGreaterThan(10)

    // Served by the user app, from both web servers, through the LB.
    const seen = new Set<string>()
    for (let i = 0; i < 8; i++) {
      const p = await httpsProbe('10.77.0.11', 443, domain, '/', ca)
      expect(p.status).toBe(200)
      seen.add(p.body.trim())
    }
    expect([...seen].sort()).toEqual(['user app on web1', 'user app on web2'])
    for (const h of WEBS) {
      // nginx proxies to the upstream and maps the LB's check to /health; the default app is gone.
      const conf = await sshOk(h, `cat ${NGINX_SITE}`)
      expect(conf).toContain(`server 127.0.0.1:${PORT};`)
      expect(conf).toMatch(/location = \/\.foobar-health \{\s+rewrite \^ \/health last;/)
      const gone = await sshOk(
        h,
        `for f in ${DEFAULT_APP_PATHS.script} ${DEFAULT_APP_PATHS.unit} ${DEFAULT_APP_PATHS.wants}; do [ -e $f ] || [ -L $f ] && echo "still $f"; done; ` +
          `systemctl is-active foobar-app 2>/dev/null || true; curl -s -m 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:8080/healthz || true`,
      )
      expect(gone.trim()).toMatch(/^(inactive|unknown)?\s*000$/)
    }
    // A second run changes nothing.
    const again = foobar(['plan', '-i', appInventory, '--json'])
    expect(again.code, again.stdout + again.stderr).toBe(0)
    const changes = (json(again.stdout).hosts as Array<{host: string; changes: unknown[]}>).filter((h) => h.changes.length)
    expect(changes).toEqual([])
  })

  test("HAProxy checks the app's /health: web2 failing it (its / still 200) goes DOWN, web1 serves meanwhile, and back UP", async () => {
    await sshOk('web2', `sudo touch ${SICK}`)
    try {
      const down = await waitState('web2', (s) => !isUp(s), 'DOWN')
      console.log(`web2 DOWN ${down} ms after its /health failed`)
      // Its / (any path but /health) still answers 200 there: only /health tells.
      expect(await sshOk('lb1', `curl -sk -o /dev/null -w '%{http_code}' --resolve ${domain}:443:10.77.0.13 https://${domain}/`)).toBe(
        '200',
      )
      for (let i = 0; i < 6; i++) {
        const p = await httpsProbe('10.77.0.11', 443, domain, '/', ca)
        expect(p.status).toBe(200)
        expect(p.body.trim()).toBe('user app on web1')
      }
    } finally {
      await sshOk('web2', `sudo rm -f ${SICK}`)
    }
    await waitState('web2', isUp, 'UP')
    const v = foobar(['verify', '-i', appInventory, '--limit', 'lb1,web1', '--json', '--no-lynis'])
    const checks = json(v.stdout).checks as Check[]
    const byName = (name: string) => checks.filter((c) => c.check === name)
    expect(byName('app answers its health path'), v.stdout).toEqual([expect.objectContaining({ok: true})])
    expect(byName('https: every backend answers')[0], v.stdout).toMatchObject({ok: true})
    expect(byName('haproxy backends up')[0], v.stdout).toMatchObject({ok: true, detail: '2 UP'})
  })
})
