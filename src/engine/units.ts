import {shq} from '../util/shell.js'

/**
 * The state of several systemd units in two `systemctl` calls instead of two per unit, printing exactly the lines
 * the per-unit form printed:
 *
 *     echo "PREFIX $(systemctl is-enabled U 2>/dev/null || FALLBACK) $(systemctl is-active U 2>/dev/null || true)"
 *
 * where FALLBACK is `true` (nothing) or `echo none`. What systemctl 252 does with several units, checked on the lab:
 * `is-active` prints one line per unit (a unit it does not know is "inactive"); `is-enabled` prints one line per
 * unit but stops at the first unit it does not know (no line, an error), so the units after it are asked again;
 * its exit status is 0 for enabled, enabled-runtime, static, alias, indirect and generated (what FALLBACK depends
 * on). Two things would break that order, so they keep the per-unit form: a name systemctl would refuse or mangle
 * (a template without instance, odd characters: checked here), and a service that has a SysV script and no native
 * unit (systemctl answers those first, out of order, through systemd-sysv-install: checked on the host, by the
 * test builtin, whenever any such script exists).
 *
 * A unit with no unit file in any directory systemctl reads (generators' output included) is not asked at all: its
 * is-enabled line is empty, as systemctl's error left it. Without that, each unknown unit cost one more
 * `systemctl is-enabled` call (about 13 ms each on a lab host; hardening asks about 11 units, most of them absent).
 */
export interface UnitLine {
  unit: string
  /** Printed before the two states (echo'd as the per-unit form did). */
  prefix: string
}

const PLAIN_UNIT = /^[A-Za-z0-9_:][A-Za-z0-9_.:-]*(@[A-Za-z0-9_:-][A-Za-z0-9_.:-]*)?$/
const SUFFIX = /\.(service|socket|timer|target|path|mount|automount|swap|slice|scope|device)$/
/** Where systemctl looks for a native unit file (system scope, generators excluded). */
const UNIT_DIRS = [
  '/etc/systemd/system.control',
  '/run/systemd/system.control',
  '/run/systemd/transient',
  '/etc/systemd/system',
  '/run/systemd/system',
  '/usr/local/lib/systemd/system',
  '/usr/lib/systemd/system',
  '/lib/systemd/system',
]

/** Where a unit file may also be: generators' output and attached portable services. */
const GENERATED_DIRS = [
  '/run/systemd/generator.early',
  '/run/systemd/generator',
  '/run/systemd/generator.late',
  '/etc/systemd/system.attached',
  '/run/systemd/system.attached',
]

/** The file names that would define a unit (`foo` is `foo.service`; `a@b.service` may come from `a@.service`). */
export function unitFileNames(unit: string): string[] {
  const file = SUFFIX.test(unit) ? unit : `${unit}.service`
  const at = file.indexOf('@')
  if (at < 0) return [file]
  const template = `${file.slice(0, at + 1)}${file.slice(file.lastIndexOf('.'))}`
  return template === file ? [file] : [file, template]
}

/** The states for which `systemctl is-enabled` exits 0. */
export const ENABLED_OK = ['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated']

/** Whether a unit name can be asked together with others (see unitLinesScript). */
export const batchableUnit = (unit: string) => PLAIN_UNIT.test(unit) && !unit.endsWith('.') && unit.length <= 255

/** The per-unit form (the reference; still used for names that cannot be batched, and when SysV scripts exist). */
export function unitLineSolo(u: UnitLine, fallback: 'empty' | 'none'): string {
  const q = shq(u.unit)
  const fb = fallback === 'none' ? 'echo none' : 'true'
  // The prefix is quoted (the old form inserted it raw into the echo); for plain names the output is the same.
  return `echo ${shq(u.prefix)}" $(systemctl is-enabled ${q} 2>/dev/null || ${fb}) $(systemctl is-active ${q} 2>/dev/null || true)"`
}

/**
 * A shell fragment printing one line per unit (see the interface's comment). Uses variables named fb_*. The engine
 * asks with `'empty'`; `'none'` has no caller in src (facts.ts' unitLines builds the components' `|| echo none`
 * lines from the empty form's output) and stays as the reference those lines are checked against (facts.test).
 */
export function unitLinesScript(
  units: UnitLine[],
  fallback: 'empty' | 'none',
  /** Where unit files are looked for (a test's own directory; the host's by default). */
  unitDirs: string[] = [...UNIT_DIRS, ...GENERATED_DIRS],
): string {
  if (units.length === 0) return ''
  const batch = units.filter((u) => batchableUnit(u.unit))
  if (batch.length < 2) return units.map((u) => unitLineSolo(u, fallback)).join('\n')
  // A service (named with or without .service) with a SysV script and no native unit: per-unit form for all.
  const sysvChecks = batch
    .map((u) => (SUFFIX.test(u.unit) ? (u.unit.endsWith('.service') ? u.unit.slice(0, -'.service'.length) : undefined) : u.unit))
    .filter((base): base is string => base !== undefined && !base.includes('@'))
    .map((base) => {
      const file = `${base}.service`
      const native = unitDirs.map((d) => `[ -e ${shq(`${d}/${file}`)} ] || [ -L ${shq(`${d}/${file}`)} ]`).join(' || ')
      return `if [ -e ${shq(`/etc/init.d/${base}`)} ] && ! { ${native}; }; then fb_sysv=1; fi`
    })
  const names = batch.map((u) => shq(u.unit)).join(' ')
  const okStates = ENABLED_OK.join('|')
  // Which units have a unit file: only those are given to is-enabled (names here are plain: no quoting needed).
  const known = units.flatMap((u, i) =>
    batchableUnit(u.unit)
      ? [
          `if ${unitFileNames(u.unit)
            .map((f) => `fb_has ${shq(f)}`)
            .join(' || ')}; then fb_k${i}=1; fb_K="$fb_K ${u.unit}"; else fb_k${i}=; fi`,
        ]
      : [],
  )
  const perUnit = units.map((u, i) => {
    if (!batchableUnit(u.unit)) return unitLineSolo(u, fallback)
    const en =
      fallback === 'none'
        ? // What `|| echo none` made of it: nothing -> none; a failing state -> the state, then "none" on a line of its own.
          `case $fb_e in ${okStates}) ;; '') fb_e=none ;; *) fb_e="$fb_e\${fb_nl}none" ;; esac; `
        : ''
    return `if [ -n "$fb_k${i}" ]; then fb_pope; else fb_e=; fi; fb_popa; ${en}echo ${shq(u.prefix)}" $fb_e $fb_a"`
  })
  return [
    `fb_sysv=`,
    `if [ -d /etc/init.d ]; then`,
    ...sysvChecks.map((l) => `  ${l}`),
    `fi`,
    `if [ -n "$fb_sysv" ]; then`,
    ...units.map((u) => `  ${unitLineSolo(u, fallback)}`),
    `else`,
    `fb_nl='`,
    `'`,
    // is-enabled for each argument, one line each (empty for a unit systemctl does not know).
    `fb_en() { while [ $# -gt 0 ]; do`,
    `  fb_o=$(systemctl is-enabled "$@" 2>/dev/null)`,
    `  if [ -n "$fb_o" ]; then while IFS= read -r fb_l; do printf '%s\\n' "$fb_l"; [ $# -gt 0 ] && shift; done <<FB_EOF`,
    `$fb_o`,
    `FB_EOF`,
    `  fi`,
    `  if [ $# -gt 0 ]; then echo; shift; fi`,
    `done; }`,
    `fb_has() { for fb_d in ${unitDirs.map(shq).join(' ')}; do if [ -e "$fb_d/$1" ] || [ -L "$fb_d/$1" ]; then return 0; fi; done; return 1; }`,
    `fb_K=`,
    ...known,
    `fb_E="$(fb_en $fb_K)$fb_nl"`,
    `fb_A="$(systemctl is-active ${names} 2>/dev/null)$fb_nl"`,
    // The next line of each list (empty once a list is used up).
    `fb_pope() { fb_e=\${fb_E%%"$fb_nl"*}; fb_E=\${fb_E#*"$fb_nl"}; }`,
    `fb_popa() { fb_a=\${fb_A%%"$fb_nl"*}; fb_A=\${fb_A#*"$fb_nl"}; }`,
    ...perUnit,
    `fi`,
  ].join('\n')
}
