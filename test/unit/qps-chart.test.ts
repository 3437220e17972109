/**
 * `monitor qps --since` (issue 19, item 5): the time range and its PromQL, Prometheus's range answer, and the chart
 * drawn from a fixed data set (captured in __snapshots__/monitoring/qps-chart*.txt, shown in the README).
 */
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {qpsChart, yAxis} from '../../src/cli/qps-chart.js'
import {type QpsSeries, parseRange, parseSince, qpsQueries, qpsRange, rangeEnd} from '../../src/components/monitoring/range.js'
import {ROOT, runCli} from './support/run-cli.js'

describe('the range and the queries', () => {
  test('--since: 1m to 15d (what Prometheus keeps), in s, m, h or d; anything else names the flag', () => {
    expect(parseSince('15m')).toBe(900)
    expect(parseSince('90s')).toBe(90)
    expect(parseSince('2h')).toBe(7200)
    expect(parseSince('15d')).toBe(15 * 86400)
    for (const bad of ['', '15', '15x', '1.5h', '-5m', '30s', '16d', 'm', '15 m'])
      expect(() => parseSince(bad), bad).toThrow(/^--since must/)
  })

  test('a point per column, never finer than the scrape interval; the rate over at least 4 scrapes and the step', () => {
    expect(qpsRange(900, 72)).toEqual({sinceSeconds: 900, stepSeconds: 15, rateSeconds: 60})
    expect(qpsRange(3600, 72)).toEqual({sinceSeconds: 3600, stepSeconds: 60, rateSeconds: 60})
    expect(qpsRange(86400, 72)).toEqual({sinceSeconds: 86400, stepSeconds: 1200, rateSeconds: 1200})
    // A step is a whole number of scrapes: 86400/100 = 864 s -> 870 s.
    expect(qpsRange(86400, 100).stepSeconds).toBe(870)
    expect(rangeEnd(1_700_000_007, qpsRange(900, 72))).toBe(1_700_000_000 - (1_700_000_000 % 15))
  })

  test("PromQL: the LBs' https frontend summed, nginx by host, only the hosts selected", () => {
    const r = qpsRange(900, 72)
    expect(qpsQueries(['lb1'], ['web1', 'web2'], r)).toEqual({
      lb: 'sum(rate(haproxy_frontend_http_requests_total{job="haproxy",proxy="https",host=~"lb1"}[60s]))',
      web: 'sum by (host) (rate(nginx_http_requests_total{job="nginx",host=~"web1|web2"}[60s]))',
    })
    expect(qpsQueries(['lb1', 'lb2'], [], qpsRange(86400, 72))).toEqual({
      lb: 'sum(rate(haproxy_frontend_http_requests_total{job="haproxy",proxy="https",host=~"lb1|lb2"}[1200s]))',
    })
    // A name is matched literally, never as a pattern.
    expect(qpsQueries([], ['web.1'], r).web).toContain('host=~"web\\\\.1"')
  })

  test("Prometheus's matrix: a series per result, by name; NaN (a counter reset) is a gap, not a zero", () => {
    const body = JSON.stringify({
      status: 'success',
      data: {
        resultType: 'matrix',
        result: [
          {
            metric: {host: 'web2'},
            values: [
              [100, '1.5'],
              [115, 'NaN'],
              [130, '2'],
            ],
          },
          {metric: {host: 'web1'}, values: [[100, '3']]},
        ],
      },
    })
    expect(parseRange(body, 'web', (m) => m.host!)).toEqual([
      {name: 'web1', role: 'web', points: [[100, 3]]},
      {
        name: 'web2',
        role: 'web',
        points: [
          [100, 1.5],
          [130, 2],
        ],
      },
    ])
    expect(() => parseRange(JSON.stringify({status: 'error', error: 'parse error at char 5'}), 'lb', () => 'lb1')).toThrow(
      'Prometheus: parse error at char 5',
    )
  })
})

/** 15 minutes at a point every 15 s: a ramp to a plateau at the LB, split unevenly over two web servers. */
const T0 = 1_700_000_100
const at = (i: number) => T0 + i * 15
const lb = Array.from({length: 61}, (_, i) => Math.round((18 + 12 * Math.sin(i / 7) + (i > 40 ? 9 : 0)) * 100) / 100)
const FIXED: QpsSeries[] = [
  {name: 'lb1', role: 'lb', points: lb.map((v, i) => [at(i), v])},
  {name: 'web1', role: 'web', points: lb.map((v, i) => [at(i), Math.round(v * 55) / 100])},
  // web2 was down for two minutes: no points there.
  {name: 'web2', role: 'web', points: lb.flatMap((v, i) => (i >= 20 && i < 28 ? [] : [[at(i), Math.round(v * 45) / 100]]))},
]
const TITLE = 'requests/s, last 15m to 22:30:00 (a point every 15s, rate over 60s)'
const plain = (s: string) => s.replace(/\u001B\[[0-9;]*m/g, '')

describe('the chart', () => {
  test('y axis: from 0 to the first round step at or above the highest value', () => {
    expect(yAxis(37.4, 5)).toEqual([0, 10, 20, 30, 40])
    expect(yAxis(40, 5)).toEqual([0, 10, 20, 30, 40])
    expect(yAxis(41, 5)).toEqual([0, 10, 20, 30, 40, 50])
    expect(yAxis(0.3, 5)).toEqual([0, 0.1, 0.2, 0.3])
    expect(yAxis(1234, 4)).toEqual([0, 500, 1000, 1500])
    expect(yAxis(0, 5)).toEqual([0, 1])
  })

  test('captured: the fixed data set, plain (what a pipe or a file gets)', async () => {
    const chart = qpsChart(FIXED, {columns: 80, color: false, timeZone: 'UTC', title: TITLE})
    console.log(chart)
    await expect(`${chart}\n`).toMatchFileSnapshot(join('__snapshots__', 'monitoring', 'qps-chart.txt'))
    expect(chart).not.toContain('\u001B[')
    const lines = chart.split('\n')
    expect(lines[0]).toBe(TITLE)
    // Each series labelled, with its own marker, its last and its highest value.
    expect(lines.slice(-3)).toEqual([
      `  * lb1   now   ${lb.at(-1)!.toFixed(1)}  max   ${Math.max(...lb).toFixed(1)}`,
      expect.stringMatching(/^ {2}\+ web1 {2}now {3}\d+\.\d {2}max {3}\d+\.\d$/),
      expect.stringMatching(/^ {2}x web2 {2}now {3}\d+\.\d {2}max {3}\d+\.\d$/),
    ])
    // Every marker is drawn in the plot, the LB's highest at the top rows.
    const plot = lines.slice(1, -3)
    for (const m of ['*', '+', 'x'])
      expect(
        plot.some((l) => l.slice(3).includes(m)),
        m,
      ).toBe(true)
    // The y axis: 0 up to 40, the round number above the highest point (38.9), labelled on the top row of the plot.
    expect(Math.max(...lb)).toBeGreaterThan(30)
    const yLabels = plot.map((l) => /^\s*(\d+(?:\.\d+)?)┤/.exec(l)?.[1]).filter(Boolean)
    expect(yLabels).toEqual(['40', '30', '20', '10', '0'])
    expect(
      plot
        .find((l) => l.includes('┤'))!
        .trimStart()
        .startsWith('40┤'),
    ).toBe(true)
    // Round times on the x axis (every 5 minutes), in the zone asked for, over the data's 15 minutes.
    const xLabels = plot.at(-1)!.trim().split(/\s+/)
    expect(xLabels).toEqual(['22:15', '22:20', '22:25', '22:30'])
    expect(lines.every((l) => l.length <= 80)).toBe(true)
    expect(Math.max(...lines.map((l) => l.length))).toBe(80)
    // The README shows this very capture.
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain(`\`\`\`\n${chart}\n\`\`\``)
  })

  test('captured: colour in a terminal, one per series, legend in the same colour; same layout', async () => {
    const chart = qpsChart(FIXED, {columns: 80, color: true, timeZone: 'UTC', title: TITLE})
    await expect(`${chart}\n`).toMatchFileSnapshot(join('__snapshots__', 'monitoring', 'qps-chart-color.txt'))
    expect(chart).toContain('\u001B[36m━\u001B[0m lb1')
    expect(chart).toContain('\u001B[32m━\u001B[0m web1')
    expect(chart).toContain('\u001B[33m━\u001B[0m web2')
    expect(plain(chart).split('\n').length).toBe(
      qpsChart(FIXED, {columns: 80, color: false, timeZone: 'UTC', title: TITLE}).split('\n').length,
    )
    expect(
      plain(chart)
        .split('\n')
        .every((l) => l.length <= 80),
    ).toBe(true)
  })

  test('fits the width it is given: no line longer, the plot as wide as it can be', () => {
    for (const columns of [40, 60, 100, 160]) {
      for (const color of [false, true]) {
        const lines = plain(qpsChart(FIXED, {columns, color, timeZone: 'UTC', title: TITLE})).split('\n')
        expect(Math.max(...lines.map((l) => l.length)), `${columns} ${color}`).toBe(columns)
      }
    }
  })

  test('a second LB doubles the top of the axis; a series with no points is left out; nothing at all says so', () => {
    const two = [...FIXED, {name: 'lb (lb1+lb2)', role: 'lb' as const, points: lb.map((v, i) => [at(i), v * 2] as [number, number])}]
    const chart = qpsChart(two, {columns: 80, color: false, timeZone: 'UTC'})
    expect(chart).toMatch(/^ *80┤/m)
    expect(chart).not.toMatch(/^ *100┤/m)
    expect(chart).toContain('o lb (lb1+lb2)')
    const none = qpsChart([{name: 'web3', role: 'web', points: []}, FIXED[0]!], {columns: 80, color: false, timeZone: 'UTC'})
    expect(none).not.toContain('web3')
    expect(qpsChart([], {columns: 80, color: false, title: 'requests/s'})).toBe('requests/s\n(no data)')
  })
})

describe('the command, before any host is contacted', () => {
  test('a bad --since or --interval is exit 2 naming the flag', async () => {
    const r = await runCli(['monitor', 'qps', '--since', '15x', '-i', 'inventories/foobar.yml', '--json'])
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stdout).error.message).toBe('--since must look like 15m, 90s, 2h or 1d (got "15x")')
    const i = await runCli(['monitor', 'qps', '--since', '15m', '--interval', '0s', '-i', 'inventories/foobar.yml'])
    expect(i.code).toBe(2)
    expect(i.stderr).toContain('--interval must be from 1s to 1h')
    // --interval is for the chart only.
    const lone = await runCli(['monitor', 'qps', '--interval', '5s', '-i', 'inventories/foobar.yml'])
    expect(lone.code).toBe(2)
    expect(lone.stderr).toContain('--since')
  })

  test('no monitoring host in the inventory: exit 2, saying what is missing and what to do', async () => {
    const r = await runCli(['monitor', 'qps', '--since', '15m', '-i', 'inventories/lab.yml', '--json'])
    expect(r.code).toBe(2)
    const e = JSON.parse(r.stdout).error
    expect(e.message).toMatch(/reads Prometheus on the monitoring host, and inventories\/lab\.yml has none/)
    expect(e.suggestions[0]).toMatch(/roles: \[monitoring\]/)
  })
})
