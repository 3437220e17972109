import {type Color, plot} from 'simple-ascii-chart'
import type {QpsSeries} from '../components/monitoring/range.js'

/*
 * `monitor qps --since`: requests per second over time as a terminal chart (simple-ascii-chart draws the axes and
 * the lines). Pure: the same series and options give the same text, so a test can capture it.
 */

export interface ChartOptions {
  /** The terminal's width: no line is longer. */
  columns: number
  /** Rows of the plot itself (axes, labels and legend come on top). */
  height?: number
  /** ANSI colours, one per series (stdout is a terminal); without them each series has its own marker character. */
  color: boolean
  /** For the time labels (IANA name); the machine's own zone when not given. */
  timeZone?: string
  title?: string
}

const COLORS: Color[] = ['ansiCyan', 'ansiGreen', 'ansiYellow', 'ansiMagenta', 'ansiBlue', 'ansiRed', 'ansiWhite']
const ANSI: Record<Color, string> = {
  ansiBlack: '\u001B[30m',
  ansiRed: '\u001B[31m',
  ansiGreen: '\u001B[32m',
  ansiYellow: '\u001B[33m',
  ansiBlue: '\u001B[34m',
  ansiMagenta: '\u001B[35m',
  ansiCyan: '\u001B[36m',
  ansiWhite: '\u001B[37m',
}
const RESET = '\u001B[0m'
const MARKERS = ['*', '+', 'x', 'o', '#', '%', '@', '&']
const visible = (line: string) => line.replace(/\u001B\[[0-9;]*m/g, '').length

/**
 * The y axis: from 0 in round steps (1, 2, 2.5 or 5 x 10^n) to the first step at or above the highest value, in at
 * most `most` steps. Nothing at all (or only zeros) gives 0 to 1.
 */
export function yAxis(max: number, most: number): number[] {
  if (!(max > 0)) return [0, 1]
  const rough = max / most
  const p = 10 ** Math.floor(Math.log10(rough))
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * p >= rough * (1 - 1e-9)) ?? 10) * p
  const count = Math.ceil(max / step - 1e-9)
  return Array.from({length: count + 1}, (_, i) => Math.round(i * step * 1e6) / 1e6)
}

const TIME_STEPS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]

/** Round times (whole minutes, hours, days) between `from` and `to`, at most `most` of them. */
function xTicks(from: number, to: number, most: number): {ticks: number[]; step: number} {
  const step = TIME_STEPS.find((s) => (to - from) / s <= most) ?? 86400 * Math.ceil((to - from) / 86400 / most)
  const ticks: number[] = []
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push(t)
  return {ticks, step}
}

function timeLabel(t: number, step: number, timeZone: string | undefined): string {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    hourCycle: 'h23',
    ...(step >= 86400 ? {month: '2-digit', day: '2-digit'} : {hour: '2-digit', minute: '2-digit'}),
    ...(step < 60 ? {second: '2-digit'} : {}),
  }).formatToParts(new Date(t * 1000))
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? ''
  if (step >= 86400) return `${get('month')}-${get('day')}`
  return step < 60 ? `${get('hour')}:${get('minute')}:${get('second')}` : `${get('hour')}:${get('minute')}`
}

const num = (n: number) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))

/**
 * The chart: a title, the plot (requests/s from 0 to a round number at or above the highest point; round times on
 * the x axis) and a legend with each series' marker, last and highest value. Series without points are left out.
 */
export function qpsChart(all: QpsSeries[], o: ChartOptions): string {
  const series = all.filter((s) => s.points.length > 0)
  const title = o.title ?? 'requests/s'
  if (series.length === 0) return `${title}\n(no data)`
  const height = o.height ?? 10
  const values = series.flatMap((s) => s.points.map(([, v]) => v))
  const times = series.flatMap((s) => s.points.map(([t]) => t))
  const ticks = yAxis(Math.max(...values), Math.max(2, Math.floor(height / 2)))
  const top = ticks.at(-1)!
  const from = Math.min(...times)
  const to = Math.max(...times)
  const paint = (i: number, text: string) => (o.color ? `${ANSI[COLORS[i % COLORS.length]!]}${text}${RESET}` : text)
  const mark = (i: number) => (o.color ? '━' : MARKERS[i % MARKERS.length]!)

  const draw = (width: number) => {
    const x = xTicks(from, to, Math.max(2, Math.floor(width / 10)))
    // Without colour, each series its own marker at each point: simple-ascii-chart calls the line formatter series
    // by series, each from index 0 (its `input` argument is always the first series, so it cannot tell them apart).
    let current = -1
    return plot(
      series.map((s) => s.points),
      {
        width,
        height,
        yRange: [0, top],
        customYAxisTicks: ticks,
        customXAxisTicks: x.ticks,
        formatter: (v, {axis}) => (axis === 'x' ? timeLabel(v, x.step, o.timeZone) : String(v)),
        ...(o.color
          ? {color: series.map((_, i) => COLORS[i % COLORS.length]!)}
          : {
              lineFormatter: ({plotX, plotY, index}) => {
                if (index === 0) current++
                return {x: plotX, y: plotY, symbol: mark(current)}
              },
            }),
      },
    )
      .split('\n')
      .map((l) => l.trimEnd())
      .filter((l, i, a) => l !== '' || (i > 0 && i < a.length - 1))
  }
  // The library's width is the plot's: measure the whole, then give the plot what is left of the terminal's width
  // (the time labels can shift with the width: measured again, and narrowed if still too wide).
  let width = Math.max(10, o.columns - 12)
  let lines = draw(width)
  for (let i = 0; i < 3; i++) {
    const spare = o.columns - Math.max(...lines.map(visible))
    if (spare === 0 || (spare > 0 && i > 0) || width + spare < 10) break
    width += spare
    lines = draw(width)
  }
  const nameWidth = Math.max(...series.map((s) => s.name.length))
  const legend = series.map((s, i) => {
    const last = s.points.at(-1)![1]
    const max = Math.max(...s.points.map(([, v]) => v))
    return `  ${paint(i, mark(i))} ${s.name.padEnd(nameWidth)}  now ${num(last).padStart(6)}  max ${num(max).padStart(6)}`
  })
  return [title.slice(0, o.columns), ...lines, ...legend].join('\n')
}
