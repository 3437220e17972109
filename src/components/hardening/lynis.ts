import type {Host} from '../../inventory/index.js'
import type {CheckOutcome, DesiredFile, ServiceSpec} from '../../engine/contract.js'
import {file} from '../../engine/contract.js'
import {LAST_APPLY} from '../../engine/facts.js'
import {HOST_LOCK} from '../../engine/run.js'
import type {Runner} from '../../remote/runner.js'
import {shq} from '../../util/shell.js'

/*
 * Lynis on the host's own schedule, so that verify reads a score instead of waiting minutes for one (issue 20).
 *
 * `foobar-lynis.service` runs Lynis once (niced, idle I/O) and keeps its latest complete report in a foobar-owned
 * place, stamped with when the run started and ended (the host's clock). It is started by `foobar-lynis.timer`
 * daily and by `foobar verify` when the report cannot be used (it started before foobar last changed the host, or
 * is too old). systemd runs one at a time: a verify that needs a run while one is under way waits for it instead of
 * starting a second. (A run after every apply, by a path unit, was tried: on 2 cores it put three Lynis runs behind
 * every provision of the lab's test suite, and the load showed in its timing-sensitive tests.)
 *
 * verify uses a report only when it started after foobar last changed the host and is younger than a limit
 * (`lynisReportUse`, pure); `--lynis-now` always runs Lynis.
 */

export const LYNIS_UNIT = 'foobar-lynis'
export const LYNIS_DIR = '/var/lib/foobar/lynis'
export const LYNIS_REPORT = `${LYNIS_DIR}/report.dat`
export const LYNIS_LOG = `${LYNIS_DIR}/lynis.log`
export const LYNIS_SCRIPT = '/usr/local/lib/foobar/lynis'
/** A report older than this is not used (the timer runs daily, up to half an hour late): verify runs Lynis. */
export const LYNIS_MAX_AGE_HOURS = 25
/** A Lynis run (with its wait for a foobar run to end) never takes longer. */
const RUN_LIMIT_S = 2 * 3600
const WAITING = 'foobar: waiting for the foobar run on this host to end'

/**
 * foobar's Lynis profile. Lynis checks only certificates that no package installed (ssl-certificate-include-packages
 * is no by default), but finds that out by asking dpkg about each file: the ~140 CA certificates under
 * /usr/share/ca-certificates (all from the ca-certificates package) cost 15-22 % of a run on the lab hosts, for no
 * check. Ignoring that directory gives the same findings and hardening index; the report's `certificates=` count
 * drops to the files Lynis looks at. The default list's /etc/letsencrypt/archive is kept.
 */
/**
 * foobar's Lynis plugin, enabled by foobar's profile only (an operator's own `lynis audit system` does not load it).
 * Lynis' LogText starts a `date` process for every line of its log: some 6,000 a run on a lab web server, a third of
 * the processes a run starts (strace: 6,528 of 19,618), 1,683 of them in the Debian plugin's DEB-0001 alone (one line
 * per binary). Sourced into Lynis' shell before the Debian plugin (plugins run in name order), it defines LogText
 * again, the same but for the stamp: each line gets the time of the log's last separator (LogTextBreak, which still
 * asks `date`: at each test and section), a resolution of one test instead of one line. The tests, findings and
 * hardening index are the same (lab web server: 257 tests, index 87, the same 29 warnings and suggestions with and
 * without it); with it, a run took 0.89 of the CPU time of a run without it (4 runs each, in turn).
 *
 * It also defines `expr` as a shell function for the one form Lynis uses, `expr N + 1` (the Debian plugin's count of
 * the binaries it scans: 1,679 `expr` processes a run on a lab web server, 20 s of a 110 s run there; strace of that
 * run: every expr Lynis 3.0.8 started was of that form), answered by the shell's own arithmetic; any other use runs
 * the real expr. With it and `--quiet` (LYNIS_ARGS), the report is the same but for its times (lab web server: index
 * 87, the same 2 warnings and 27 suggestions, the same tests run and skipped).
 */
export const LYNIS_LOG_PLUGIN_NAME = 'cached-log-time'
/** Lynis' Debian package keeps its plugins here (and finds none of the directories it looks at first). */
export const LYNIS_LOG_PLUGIN = `/etc/lynis/plugins/plugin_${LYNIS_LOG_PLUGIN_NAME}_phase1`
const LOG_PLUGIN = `#!/bin/sh
# Managed by foobar, enabled only by foobar's profile (plugin=${LYNIS_LOG_PLUGIN_NAME}): Lynis' log lines stamped with
# the time of the log's last separator instead of a \`date\` process each, and \`expr N + 1\` counted by the shell
# instead of an expr process each. Loaded before the Debian plugin.
#-----------------------------------------------------
# PLUGIN_AUTHOR=foobar
# PLUGIN_CATEGORY=performance
# PLUGIN_DESC=Log lines stamped with the time of the last separator, without a date process each; expr N + 1 by the shell
# PLUGIN_NAME=${LYNIS_LOG_PLUGIN_NAME}
# PLUGIN_VERSION=1.1
# PLUGIN_REQUIRED_TESTS=
#-----------------------------------------------------
    LogText() {
        if [ ! "\${LOGFILE}" = "" -a \${LOGTEXT} -eq 1 ]; then echo "\${CDATE} $1" >> \${LOGFILE}; fi
    }
    expr() {
        if [ $# -eq 3 ] && [ "$2" = "+" ] && [ "$3" = "1" ]; then
            case $1 in
                "" | *[!0-9]* | ?????????*) command expr "$@" ;;
                *) echo $(($1 + 1)) ;;
            esac
        else
            command expr "$@"
        fi
    }
`

export const LYNIS_PROFILE = [
  'ssl-certificate-paths-to-ignore=/etc/letsencrypt/archive:/usr/share/ca-certificates',
  `plugin=${LYNIS_LOG_PLUGIN_NAME}`,
].join('\n')
const LYNIS_PROFILE_WHY =
  "CA certificates installed by a package: Lynis skips them anyway, after a dpkg query each. foobar's plugin: a log without a date process a line, expr N + 1 by the shell."

/**
 * Lynis' options: the ones verify always used (so scores compare with earlier ones), and --quiet: its screen output
 * goes nowhere (progress is read from its log), and quiet it skips the work of showing it (a `wc` and a `tr` for
 * every line it would print, and the summary of warnings and suggestions at its end: some 2,000 processes a run);
 * the report is the same, and the log has the same tests and test groups (the progress verify shows).
 */
export const LYNIS_ARGS = '--quick --quiet --no-colors'

/** The run itself. */
export function lynisScript(): string {
  const dir = shq(LYNIS_DIR)
  const lock = shq(HOST_LOCK)
  return `#!/bin/sh
# Managed by foobar: one Lynis audit. Its report, stamped with when the run started and ended, is what
# \`foobar verify\` reads (${LYNIS_REPORT}); run by ${LYNIS_UNIT}.service (after foobar changes the host,
# daily) or by \`foobar verify\`.
set -u
umask 077
mkdir -p ${dir}
echo ${shq(WAITING)} > ${dir}/lynis.log
# Not halfway through a foobar run: wait until it ends (it holds this lock), so the score is of the host it leaves.
if [ -e ${lock} ] && command -v flock >/dev/null; then flock -w 3600 ${lock} true || true; fi
started=$(date +%s.%N)
rm -f ${dir}/report.new
# Added to Lynis' own default.prf and custom.prf. ${LYNIS_PROFILE_WHY}
printf '%s\\n' ${shq(LYNIS_PROFILE)} > ${dir}/foobar.prf
lynis audit system ${LYNIS_ARGS} --profile ${dir}/foobar.prf --report-file ${dir}/report.new --log-file ${dir}/lynis.log >/dev/null 2>&1
code=$?
if ! grep -q '^hardening_index=' ${dir}/report.new 2>/dev/null; then
  echo "lynis exited $code without a hardening index (see ${LYNIS_LOG})" >&2
  rm -f ${dir}/report.new
  exit 1
fi
printf 'foobar_started=%s\\nfoobar_finished=%s\\n' "$started" "$(date +%s.%N)" >> ${dir}/report.new
mv -f ${dir}/report.new ${dir}/report.dat
`
}

const SERVICE = `# Managed by foobar: one Lynis audit, for \`foobar verify\` (${LYNIS_REPORT}).
[Unit]
Description=Lynis audit for foobar verify
Documentation=man:lynis(8)

[Service]
Type=oneshot
ExecStart=${LYNIS_SCRIPT}
Nice=19
IOSchedulingClass=idle
TimeoutStartSec=${RUN_LIMIT_S}
`

const TIMER = `# Managed by foobar: a Lynis audit every day, so \`foobar verify\` reads a recent score.
[Unit]
Description=Daily Lynis audit for foobar verify

[Timer]
OnCalendar=daily
RandomizedDelaySec=30min
Persistent=true

[Install]
WantedBy=timers.target
`

/** What the hardening component puts on a host for the scheduled runs (with the `lynis` package). */
export function lynisState(): {files: DesiredFile[]; services: ServiceSpec[]} {
  const unit = (suffix: string, content: string, notify: string[] = []) =>
    file(`/etc/systemd/system/${LYNIS_UNIT}.${suffix}`, content, notify.length ? {notify} : {})
  return {
    files: [
      file(LYNIS_SCRIPT, lynisScript(), {mode: 0o755}),
      file(LYNIS_LOG_PLUGIN, LOG_PLUGIN, {mode: 0o644}),
      unit('service', SERVICE),
      unit('timer', TIMER, [`${LYNIS_UNIT}.timer`]),
    ],
    services: [{name: `${LYNIS_UNIT}.timer`, onChange: 'restart'}],
  }
}

/** What verify reads in one round trip: the host's clock, LAST_APPLY, the report's stamps, whether the unit is there. */
export function lynisProbeScript(): string {
  const report = shq(LYNIS_REPORT)
  return [
    'echo "now $(date +%s.%N)"',
    `[ -f ${shq(LAST_APPLY)} ] && echo "applied $(cat ${shq(LAST_APPLY)})"`,
    `[ -f ${report} ] && grep -E '^(hardening_index|foobar_started|foobar_finished)=' ${report} | sed 's/^/report /'`,
    `[ -f /etc/systemd/system/${LYNIS_UNIT}.service ] && echo "unit $(systemctl is-active ${LYNIS_UNIT}.service 2>/dev/null)"`,
    'true',
  ].join('\n')
}

export interface LynisReport {
  index: number
  /** Seconds since the epoch, by the host's clock. */
  started: number
  finished: number
}

export interface LynisProbe {
  now: number
  /** When foobar last changed the host (LAST_APPLY), if it says. */
  lastApply?: number
  /** The latest complete report, if there is one with its stamps. */
  report?: LynisReport
  /** foobar-lynis.service is on the host (the scheduled runs are set up), and its state (`activating` while it runs). */
  unit?: string
}

const seconds = (s: string | undefined) => (s !== undefined && /^\d+(\.\d+)?$/.test(s.trim()) ? Number(s.trim()) : undefined)

/** Pure parser of lynisProbeScript's output. */
export function parseLynisProbe(text: string): LynisProbe {
  const out: LynisProbe = {now: NaN}
  const report: Partial<LynisReport> = {}
  for (const line of text.split('\n')) {
    const [tag, ...rest] = line.split(' ')
    const value = rest.join(' ')
    if (tag === 'now') out.now = seconds(value) ?? NaN
    else if (tag === 'applied') out.lastApply = seconds(value)
    else if (tag === 'unit') out.unit = value.trim() || 'inactive'
    else if (tag === 'report') {
      const [k, v] = [value.slice(0, value.indexOf('=')), value.slice(value.indexOf('=') + 1)]
      if (k === 'hardening_index') report.index = seconds(v)
      else if (k === 'foobar_started') report.started = seconds(v)
      else if (k === 'foobar_finished') report.finished = seconds(v)
    }
  }
  if (report.index !== undefined && report.started !== undefined && report.finished !== undefined) out.report = report as LynisReport
  return out
}

export type LynisUse = {use: true; ageS: number} | {use: false; reason: string}

/** "40 s", "4 min", "3 h". */
export function ago(s: number): string {
  const v = Math.max(0, s)
  if (v < 90) return `${Math.round(v)} s`
  if (v < 90 * 60) return `${Math.round(v / 60)} min`
  return `${Math.round(v / 3600)} h`
}

/**
 * Pure: may verify take the host's latest Lynis report as its score? Only a report that started after foobar last
 * changed the host (a report that overlaps a change describes a host that is gone), that is younger than
 * `maxAgeS`, and not when `--lynis-now` asks for a run. When foobar's last change is not recorded, no report is
 * used: every apply of this version records it.
 */
export function lynisReportUse(o: {now: number; lastApply?: number; report?: LynisReport; maxAgeS: number; force: boolean}): LynisUse {
  if (o.force) return {use: false, reason: '--lynis-now'}
  const r = o.report
  if (!r) return {use: false, reason: 'no report on the host yet'}
  if (o.lastApply === undefined) return {use: false, reason: 'when foobar last changed the host is not recorded'}
  if (!(r.started > o.lastApply)) {
    return {
      use: false,
      reason: `the last report (${ago(o.now - r.started)} ago) is older than foobar's last change (${ago(o.now - o.lastApply)} ago)`,
    }
  }
  // A clock set back since: the stamps cannot be compared with now.
  if (r.finished < r.started || r.finished > o.now + 60) return {use: false, reason: "the last report is dated after the host's clock"}
  if (o.now - r.started > o.maxAgeS) {
    return {use: false, reason: `the last report is ${ago(o.now - r.started)} old (limit ${ago(o.maxAgeS)})`}
  }
  return {use: true, ageS: o.now - r.finished}
}

/** Reads a running Lynis' log (tagged lines for lynisProgress): its first line, its test groups, its last step. */
export function lynisLogScript(): string {
  const f = shq(LYNIS_LOG)
  return [
    `[ -f ${f} ] || exit 0`,
    `echo "first $(head -n 1 ${f})"`,
    `echo "groups $(grep -c 'Performing tests from category' ${f})"`,
    `grep -h 'Performing tests from category' ${f} | tail -n 1 | sed 's/^/group /'`,
    `grep -hE 'Performing tests from category|Performing test ID' ${f} | tail -n 1 | sed 's/^/last /'`,
  ].join('\n')
}

/** Pure: what a running Lynis is doing, from lynisLogScript's output ("Kernel: KRNL-5622 (test group 7)"). */
export function lynisProgress(text: string): string | undefined {
  const tagged = (tag: string) =>
    text
      .split('\n')
      .find((l) => l.startsWith(`${tag} `))
      ?.slice(tag.length + 1)
  const group = /Performing tests from category: (.+?)\s*$/.exec(tagged('group') ?? '')?.[1]
  const test = /Performing test ID (\S+)/.exec(tagged('last') ?? '')?.[1]
  if (group) return `${group}${test ? `: ${test}` : ''} (test group ${Number(tagged('groups')) || 1})`
  const first = tagged('first') ?? ''
  if (first.includes(WAITING)) return 'waiting for the foobar run on the host to end'
  if (/Starting Lynis/.test(first)) return 'starting'
  return undefined
}

export interface LynisCheckOptions {
  /** --lynis-now: run Lynis whatever the report. */
  now: boolean
  maxAgeHours: number
  /** How often the progress line is read from the host while Lynis runs. */
  pollMs?: number
}

/**
 * verify's Lynis check: the host's latest report when it can be used, else a run now (through the unit where the
 * scheduled runs are set up, so a run under way is joined rather than doubled; else installed on demand and run
 * over this connection). Its answer is final: no retry of a minutes-long run.
 */
export async function lynisCheck(host: Host, conn: Runner, o: LynisCheckOptions, say: (text: string) => void): Promise<CheckOutcome> {
  const min = host.hardening.thresholds.lynisMin
  const verdict = (index: number, how: string): CheckOutcome => ({
    ok: index >= min,
    final: true,
    detail: `hardening index ${index} (minimum ${min}; ${how})`,
  })
  const probe = async () => parseLynisProbe((await conn.run(lynisProbeScript(), {check: false})).stdout)
  const maxAgeS = o.maxAgeHours * 3600
  let p = await probe()
  if (Number.isNaN(p.now)) return {ok: false, final: true, detail: 'cannot read the host clock (date)'}
  const first = lynisReportUse({...p, maxAgeS, force: o.now})
  if (first.use) return verdict(p.report!.index, `report from ${ago(first.ageS)} ago`)
  const asked = p.now
  // Twice at most: a run under way when verify came may have started before foobar's last change.
  for (let attempt = 0; attempt < 2; attempt++) {
    say(attempt ? 'the run under way started too early: running again' : `running now (${first.reason})`)
    const failure = await runLynis(conn, p.unit !== undefined, say, o.pollMs ?? 2000)
    if (failure) return {ok: false, final: true, detail: failure}
    p = await probe()
    if (!p.report) return {ok: false, final: true, detail: `Lynis ran, but there is no report in ${LYNIS_REPORT}`}
    // A run that started since verify asked, or one under way that is good enough by the same rules.
    if (p.report.started >= asked || (!o.now && lynisReportUse({...p, maxAgeS, force: false}).use)) {
      return verdict(p.report.index, `ran now in ${Math.round(p.report.finished - p.report.started)} s: ${first.reason}`)
    }
  }
  return {ok: false, final: true, detail: 'Lynis ran twice without a report younger than foobar\u2019s last change'}
}

/** One run, its log read every `pollMs` for the progress line meanwhile; returns what went wrong, if anything. */
async function runLynis(conn: Runner, unit: boolean, say: (text: string) => void, pollMs: number): Promise<string | undefined> {
  let running = true
  const run = (async () => {
    try {
      if (unit) {
        // Joins a run under way (systemd runs one at a time) or starts one.
        const r = await conn.run(`systemctl start ${LYNIS_UNIT}.service`, {check: false, timeoutMs: (RUN_LIMIT_S + 60) * 1000})
        if (r.code === 0) return undefined
        const journal = await conn.run(`journalctl -u ${LYNIS_UNIT}.service -n 3 --no-pager -o cat`, {check: false})
        const why = (journal.stdout.trim() || r.stderr.trim()).split('\n').slice(-2).join(' | ')
        // systemd could not run it (seen in containers: 219/CGROUP after its control group could not be killed):
        // the same script in this session instead, as verify ran Lynis before the unit existed.
        say(`${LYNIS_UNIT}.service failed (${why}); running Lynis in this session`)
        const direct = await conn.run('sh -s', {stdin: lynisScript(), check: false, timeoutMs: (RUN_LIMIT_S + 60) * 1000})
        // Handled here: the unit is not left listed as failed (monitoring counts failed units).
        await conn.run(`systemctl reset-failed ${LYNIS_UNIT}.service`, {check: false})
        return direct.code === 0
          ? undefined
          : `${LYNIS_UNIT}.service failed: ${why}; in this session: ${(direct.stderr || direct.stdout).trim().split('\n').pop()}`
      }
      // Not set up by provision here (hardening.skip.audit_tools, or an older foobar): installed through the inventory's apt proxy.
      const proxy = conn.host.apt.proxy ? ` -o Acquire::http::Proxy=${shq(conn.host.apt.proxy)}` : ''
      const apt = `DEBIAN_FRONTEND=noninteractive apt-get${proxy} -q`
      say('installing lynis')
      const install = await conn.run(
        `command -v lynis >/dev/null || { ${apt} update >/dev/null && ${apt} -y --no-install-recommends install lynis >/dev/null; }`,
        {check: false, timeoutMs: 30 * 60_000},
      )
      if (install.code !== 0) return `installing lynis failed: ${install.stderr.trim().split('\n').pop()}`
      const r = await conn.run('sh -s', {stdin: lynisScript(), check: false, timeoutMs: (RUN_LIMIT_S + 60) * 1000})
      return r.code === 0 ? undefined : `lynis failed: ${(r.stderr || r.stdout).trim().split('\n').pop()}`
    } finally {
      running = false
    }
  })()
  const poll = (async () => {
    let last = ''
    while (running) {
      await Promise.race([run, new Promise((r) => setTimeout(r, pollMs))])
      if (!running) break
      const tail = await conn.run(lynisLogScript(), {check: false}).catch(() => undefined)
      const now = tail && lynisProgress(tail.stdout)
      if (now && now !== last && running) say((last = now))
    }
  })()
  const [failure] = await Promise.all([run, poll])
  return failure
}
