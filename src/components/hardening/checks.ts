import {execFile} from 'node:child_process'
import {type HardeningItem, type Host, sshPort, sshUser} from '../../inventory/index.js'
import type {Check, CheckContext} from '../../engine/contract.js'
import type {Runner} from '../../remote/runner.js'
import {parseSshAudit} from './audit.js'
import {LYNIS_MAX_AGE_HOURS, lynisCheck} from './lynis.js'
import {type HardeningSpec, hardeningSpec} from './spec.js'
import {parseHardeningFacts, planHardening} from './live.js'
import {sysctlSkipReason} from './sysctl.js'
import {RKHUNTER_DB, RKHUNTER_UNIT, rkhunterDbState} from './rkhunter.js'

/** sshd's effective settings (`sshd -T`, lowercase) that keep the door shut. */
const EFFECTIVE = {
  passwordauthentication: 'no',
  kbdinteractiveauthentication: 'no',
  permitemptypasswords: 'no',
  x11forwarding: 'no',
  allowtcpforwarding: 'no',
  allowagentforwarding: 'no',
  permituserenvironment: 'no',
  loglevel: 'VERBOSE',
} as const

export function hardeningChecks(ctx: CheckContext): Check[] {
  const {host, runner: conn} = ctx
  const spec = hardeningSpec(host)
  const options = {
    lynis: ctx.options.lynis,
    facts: {
      get: async () => {
        const f = await ctx.facts.get()
        return {virt: f.virt, hardening: f.live.hardening ?? []}
      },
      drop: ctx.facts.drop,
    },
  }
  const checks: Check[] = Object.entries(spec.skipped).map(([item, reason]) => ({
    name: `hardening ${item}`,
    run: async () => ({ok: true, skipped: true, detail: `switched off: ${reason}`}),
  }))
  const on = (item: HardeningItem) => spec.skipped[item] === undefined
  if (on('ssh')) checks.push({name: 'hardening ssh', run: () => sshdEffective(host, conn)})
  if (on('sysctl')) checks.push(...sysctlChecks(options.facts, spec))
  if (spec.rkhunter) checks.push({name: 'hardening rkhunter', run: () => rkhunterCheck(options.facts)})
  checks.push({name: 'ssh-audit', run: () => sshAudit(host, spec)})
  checks.push(
    options.lynis
      ? {
          name: 'lynis',
          run: (say) =>
            lynisCheck(
              host,
              conn,
              {now: ctx.options.lynisNow ?? false, maxAgeHours: ctx.options.lynisMaxAgeHours ?? LYNIS_MAX_AGE_HOURS},
              say,
            ),
        }
      : {name: 'lynis', run: async () => ({ok: true, skipped: true, detail: 'not run (--no-lynis)'})},
  )
  return checks
}

async function sshdEffective(host: Host, conn: Runner) {
  const r = await conn.run('sshd -T', {check: false})
  if (r.code !== 0) return {ok: false, detail: `sshd -T failed: ${r.stderr.trim().split('\n').pop()}`}
  const live = Object.fromEntries(r.stdout.split('\n').map((l) => [l.split(' ')[0], l.slice(l.indexOf(' ') + 1)]))
  const want: Record<string, string> = {...EFFECTIVE, permitrootlogin: sshUser(host) === 'root' ? 'without-password' : 'no'}
  const wrong = Object.entries(want)
    .filter(([k, v]) => live[k] !== v)
    .map(([k, v]) => `${k} ${live[k] ?? '(unset)'}, want ${v}`)
  return wrong.length
    ? {ok: false, detail: wrong.join('; ')}
    : {ok: true, detail: `root login ${want.permitrootlogin}, keys only, forwarding off`}
}

/**
 * The host's live state as verify read it once for all its checks (`systemd-detect-virt` and the lines of
 * hardeningFactsScript); `drop` makes the next `get` read the host again.
 */
interface LiveFacts {
  get: () => Promise<{virt: string; hardening: string[]}>
  drop: () => void
}

/** rkhunter's file properties database: built, being built in the background, or missing. */
async function rkhunterCheck(live: LiveFacts) {
  const facts = parseHardeningFacts((await live.get()).hardening)
  switch (rkhunterDbState(facts.rkhunter, facts.units[RKHUNTER_UNIT])) {
    case 'built':
      return {ok: true, detail: 'file properties database built'}
    case 'building':
      return {ok: true, detail: `file properties database being built in the background (${RKHUNTER_UNIT})`}
    case 'missing':
      live.drop()
      return {ok: false, detail: `no file properties database (${RKHUNTER_DB}): foobar provision builds it`}
    default:
      live.drop()
      return {ok: false, detail: 'rkhunter is not installed: foobar provision installs it'}
  }
}

/** Live kernel settings; in a container the keys it cannot set are their own, skipped, line. */
function sysctlChecks(live: LiveFacts, spec: HardeningSpec): Check[] {
  const kernelOnly: HardeningSpec = {...spec, modes: [], disable: [], hostOnly: [], rkhunter: false}
  const state = async () => {
    const {virt, hardening} = await live.get()
    const facts = parseHardeningFacts(hardening)
    const skipped: Record<string, string> = {}
    const action = planHardening(kernelOnly, facts, virt, undefined).find((a) => a.kind === 'sysctl')
    for (const key of Object.keys(spec.sysctl)) {
      const why = sysctlSkipReason(key, virt, facts.sysctl[key])
      if (why) skipped[key] = why
    }
    return {wrong: action?.kind === 'sysctl' ? Object.keys(action.set) : [], skipped}
  }
  return [
    {
      name: 'hardening sysctl',
      run: async () => {
        const {wrong, skipped} = await state()
        const n = Object.keys(spec.sysctl).length - Object.keys(skipped).length
        if (wrong.length === 0) return {ok: true, detail: `${n} kernel settings in force`}
        live.drop()
        return {ok: false, detail: `not as set: ${wrong.join(', ')}`}
      },
    },
    {
      name: 'hardening sysctl (not settable)',
      run: async () => {
        const {skipped} = await state()
        const keys = Object.keys(skipped)
        if (keys.length === 0) return {ok: true, detail: 'every setting applies'}
        return {
          ok: true,
          skipped: true,
          detail: `${keys.length} keys: ${[...new Set(Object.values(skipped))].join('; ')} (${keys.join(', ')})`,
        }
      },
    },
  ]
}

/** ssh-audit from the control machine: what any client sees, counted against the inventory's thresholds. */
async function sshAudit(host: Host, spec: HardeningSpec) {
  const {sshAuditFail, sshAuditWarn} = host.hardening.thresholds
  let text: string
  try {
    text = await new Promise<string>((resolve, reject) =>
      // Exit 1/2 mean warnings/failures: the report is on stdout either way.
      execFile('ssh-audit', ['-n', '-t', '10', '-p', String(sshPort(host)), host.address], {timeout: 60_000}, (error, stdout) =>
        (error as NodeJS.ErrnoException | null)?.code === 'ENOENT'
          ? reject(new Error('ssh-audit is not installed on the control machine (Debian package ssh-audit)'))
          : resolve(stdout),
      ),
    )
  } catch (error) {
    return {ok: false, final: true, detail: (error as Error).message}
  }
  const r = parseSshAudit(text)
  if (!r.banner) return {ok: false, detail: `no answer from ${host.address}:${sshPort(host)}: ${text.trim().split('\n').pop()}`}
  const detail = `${r.fail.length} fail, ${r.warn.length} warn${[...r.fail, ...r.warn].length ? `: ${[...r.fail, ...r.warn].slice(0, 4).join('; ')}` : ''}${r.ignored.length ? ` (not counted: ${r.ignored.join('; ')})` : ''}`
  const ok = r.fail.length <= sshAuditFail && r.warn.length <= sshAuditWarn
  if (!ok && spec.skipped.ssh) return {ok: true, skipped: true, detail: `${detail}; ssh hardening switched off: ${spec.skipped.ssh}`}
  return {ok, detail}
}
