import {renderTemplate} from '../../render/templates.js'
import {type Check, type CheckContext, type Component, file} from '../../engine/contract.js'
import type {Host} from '../../inventory/index.js'
import {shq} from '../../util/shell.js'

export const APT_PROXY_FILE = '/etc/apt/apt.conf.d/80foobar-proxy'
export const PINS_FILE = '/etc/apt/preferences.d/foobar-pins'

/** Packages whose version verify reports on every host that has them (besides the pinned ones). */
export const REPORTED_PACKAGES = ['nginx', 'haproxy', 'mariadb-server', 'openssh-server', 'openssl']

const pinList = (host: Host) =>
  Object.entries(host.pins)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, version]) => ({name, version}))

/** apt preferences that hold each pinned package at its version (pure; the inventory validated names and versions). */
export function renderPins(host: Host): string {
  return renderTemplate('base/pins', {host: host.name, pins: pinList(host)})
}

/** Pure: `dpkg-query` lines (`name version status...`) -> installed versions. */
export function parseVersions(output: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of output.split('\n')) {
    const [name, version, ...status] = line.trim().split(/\s+/)
    if (name && version && status.join(' ') === 'install ok installed') out[name] = version
  }
  return out
}

/** Pure: the versions check's outcome from what is installed. */
export function versionsOutcome(host: Host, installed: Record<string, string>) {
  const wrong = pinList(host).filter((p) => installed[p.name] !== p.version)
  const names = [...new Set([...Object.keys(host.pins), ...REPORTED_PACKAGES])].sort().filter((n) => installed[n] !== undefined)
  const shown = names.map((n) => `${n} ${installed[n]}${host.pins[n] ? ' (pinned)' : ''}`).join(', ')
  if (wrong.length) {
    return {
      ok: false,
      detail: `${wrong.map((p) => `${p.name} ${installed[p.name] ?? 'not installed'}, pinned ${p.version}`).join('; ')}${shown ? ` (${shown})` : ''}`,
    }
  }
  return {ok: true, detail: shown || 'none of the reported packages installed'}
}

function versionsCheck(ctx: CheckContext): Check {
  const names = [...new Set([...Object.keys(ctx.host.pins), ...REPORTED_PACKAGES])].sort()
  return {
    name: 'package versions',
    run: async () => {
      const r = await ctx.runner.run(
        `dpkg-query -W -f='\${Package} \${Version} \${Status}\\n' ${names.map(shq).join(' ')} 2>/dev/null || true`,
        {
          check: false,
        },
      )
      return versionsOutcome(ctx.host, parseVersions(r.stdout))
    },
  }
}

/** What every host gets: the apt proxy setting (air-gapped fleets and the lab use one), and the pinned versions. */
export const base: Component = {
  name: 'base',
  appliesTo: () => true,
  desired: ({host}) => {
    const pinned = Object.keys(host.pins).length > 0
    return {
      packages: [],
      versions: {...host.pins},
      files: [
        ...(host.apt.proxy ? [file(APT_PROXY_FILE, renderTemplate('base/apt-proxy.conf', {proxy: host.apt.proxy}))] : []),
        ...(pinned ? [file(PINS_FILE, renderPins(host))] : []),
      ],
      absent: [...(host.apt.proxy ? [] : [APT_PROXY_FILE]), ...(pinned ? [] : [PINS_FILE])],
      services: [],
    }
  },
  checks: (ctx) => [versionsCheck(ctx)],
}
