/*
 * A Debian host faked in a temp directory, behind the transport seam (src/remote/runner.ts): unit tests of the
 * engine and the components without SSH, root or a lab.
 *
 * A FakeHost is a Runner. Every command is recorded (script, stdin, root, result, a sequence number shared by every
 * fake host, so the order across hosts can be checked). Commands are answered by scripted handlers (`on`) when one
 * matches, else, by default, run FOR REAL with /bin/sh inside a per-host temporary root directory:
 *
 * - absolute paths under /etc, /var, /opt, /run, /srv, /boot, /root, /home and /usr in the script (and in stdin,
 *   except a file's content) are rewritten into that root; the root is taken out of stdout and stderr again, so
 *   messages name the paths the engine knows;
 * - PATH holds only small stubs (systemctl, systemd-run, apt-get, dpkg, dpkg-query, chown, stat, sysctl, ufw, iptables,
 *   socat for HAProxy's runtime API, curl, the daemons' config checkers, ...) and a whitelist of harmless real tools
 *   (cat, cp, mv, sed, sha256sum, tar, ...): nothing on this machine outside the temp root can be changed by a
 *   script, and a command that is neither stubbed nor whitelisted is "not found". Run as root, the scripts run as
 *   nobody, so a path that escaped the rewriting could not touch this machine either;
 * - the stubs keep the host's "kernel" state in a state directory: units (enabled/active), installed packages,
 *   sysctl values, loaded iptables rules, HAProxy's server states, owners set by chown (by inode: the tests run as
 *   an ordinary user) and a journal of what they did (`journal()`).
 *
 * So the engine's own scripts (writeFileScript, restoreScript, addPendingScript, the facts script, the components'
 * live-state scripts and steps) run unchanged and have observable effects on the fake host's files and services.
 * With `{shell: false}` nothing runs: unmatched commands get the default answer (scripted hosts, e.g. databases).
 */
import {execFileSync, spawn} from 'node:child_process'
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import {type Server, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll} from 'vitest'
import {SYSCTL} from '../../../src/components/hardening/sysctl.js'
import {RemoteError} from '../../../src/util/errors.js'
import {type HealthTiming, PROBE_LINE, PROBE_OF, PROBE_RC} from '../../../src/engine/apply.js'
import type {TlsMaterial} from '../../../src/engine/contract.js'
import {type Host, type Inventory, parseInventory, sshPort, sshUser} from '../../../src/inventory/index.js'
import type {RunOptions, RunResult, Runner, Transport} from '../../../src/remote/runner.js'

export interface Command {
  host: string
  /** Order across every fake host of the process. */
  seq: number
  script: string
  stdin?: string
  root: boolean
  result?: RunResult
  /** The connection dropped on this command (it may have run on the host all the same). */
  lost?: boolean
  /** How long it took. */
  ms?: number
  /** Run as the `then` of a hold (Runner.hold): in the lock's round trip. */
  inHold?: boolean
}

export interface Answer {
  code?: number
  stdout?: string
  stderr?: string
}

/** Returns an answer, or nothing to let the command run as usual (a handler may also just observe, or throw). */
export type Handler = (cmd: Command, host: FakeHost) => Answer | undefined | void | Promise<Answer | undefined | void>
export type Match = RegExp | string | ((cmd: Command) => boolean)

/** What a dropped SSH connection looks like to the engine. */
export class ConnectionLost extends Error {
  constructor(host: string) {
    super(`${host}: connection lost (read ECONNRESET)`)
    this.name = 'ConnectionLost'
  }
}

export interface FakeHostOptions {
  /** Run unmatched commands with /bin/sh in the temp root (default), or answer them with `answer`. */
  shell?: boolean
  answer?: Answer
  /** What clientAddress() returns: foobar's address as the host sees it. */
  clientAddress?: string
  /** What localAddress() returns: this end's address (default: clientAddress's; null: none known, as over a jump host). */
  localAddress?: string | null
  /** systemd-detect-virt's answer. */
  virt?: string
  /** Packages installed before foobar ever ran (openssh-server always is: foobar came in over SSH). */
  packages?: string[]
  /** An empty root (clone() fills it). */
  bare?: boolean
  /**
   * The host can hold a run's lock (Runner.hold; without it a run takes no host lock): always free at once, a `then`
   * script run as run() runs it (its command marked `inHold`). The shell side is tested in connection.test.ts.
   */
  holds?: boolean
}

/**
 * Shell text as written (backslashes kept, like String.raw); `\${` stands for the shell's `${`, which a template
 * literal would otherwise take for an interpolation.
 */
function sh(strings: TemplateStringsArray): string {
  return strings.raw.join('').replaceAll('\\${', '${')
}

// proc: the hardening facts read /proc/sys/KEY themselves (the fake's kernel keys are files there; see the sysctl stub).
const PATH_ROOTS = ['etc', 'var', 'opt', 'run', 'srv', 'boot', 'root', 'home', 'usr', 'proc']
/** An absolute path at the start of a word (after a space, quote, `=`, a redirection, `(`, `;`, `|`, `&` or a backquote). */
const ABSOLUTE = new RegExp(`(^|[\\s'"=<>(|;&\`])/(${PATH_ROOTS.join('|')})(?=/|$|[\\s'"\`;|&<>)])`, 'gm')
/** writeFileScript: its stdin is the file's content, which must arrive byte for byte. */
const isFileWrite = (script: string) => script.startsWith('set -e\numask 022;')

const AS_ROOT = process.getuid?.() === 0
const NOBODY = 65534

let sequence = 0
/** Every temp directory made here: removed after the test file that imported this module (workers may not exit). */
const made: string[] = []
const removeAll = () => {
  for (const d of made.splice(0)) rmSync(d, {recursive: true, force: true, maxRetries: 5})
  shared = undefined
}
afterAll(removeAll)
process.on('exit', removeAll)

function mkdirs(dir: string): void {
  const missing: string[] = []
  for (let d = dir; !existsSync(d); d = dirname(d)) missing.push(d)
  mkdirSync(dir, {recursive: true})
  if (AS_ROOT) for (const d of missing) chownSync(d, NOBODY, NOBODY)
}

/** Writes a file the scripts (running as nobody when this is root) can change. */
function put(path: string, content: string, mode = 0o644): void {
  mkdirs(dirname(path))
  writeFileSync(path, content)
  chmodSync(path, mode)
  if (AS_ROOT) chownSync(path, NOBODY, NOBODY)
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* The stubs: one directory per process, shared by every fake host (their state is in FAKE_STATE, their root in    */
/* FAKE_ROOT).                                                                                                        */

const LIB = sh`
journal() { printf '%s\n' "$*" >> "$FAKE_STATE/journal"; }
# failing NAME [CODE]: the test made NAME fail: its message on stderr, and exit.
failing() { [ -f "$FAKE_STATE/fail/$1" ] || return 0; cat "$FAKE_STATE/fail/$1" >&2; [ -f "$FAKE_STATE/fail/$1.once" ] && rm -f "$FAKE_STATE/fail/$1" "$FAKE_STATE/fail/$1.once"; exit "\${2:-1}"; }
# Builtins only where the facts script calls a stub hundreds of times.
unit_get() { _v=; [ -f "$FAKE_STATE/units/$1.$2" ] && read -r _v < "$FAKE_STATE/units/$1.$2"; echo "$_v"; }
unit_set() { [ -d "$FAKE_STATE/units" ] || mkdir -p "$FAKE_STATE/units"; printf '%s\n' "$3" > "$FAKE_STATE/units/$1.$2"; [ "$2" = enabled ] && unit_file "$1"; true; }
# A unit systemctl knows has a unit file (what the facts script looks for before asking is-enabled).
unit_file() { case $1 in *.*) _f=$1 ;; *) _f=$1.service ;; esac; [ -d "$FAKE_ROOT/usr/lib/systemd/system" ] || mkdir -p "$FAKE_ROOT/usr/lib/systemd/system"; [ -e "$FAKE_ROOT/usr/lib/systemd/system/$_f" ] || : > "$FAKE_ROOT/usr/lib/systemd/system/$_f"; }
unit_name() { case $1 in *.service) echo "\${1%.service}" ;; *) echo "$1" ;; esac; }
`

const STUBS: Record<string, string> = {
  systemctl: sh`
args=; now=
for a in "$@"; do case $a in --now) now=1 ;; -*) ;; *) args="$args $a" ;; esac; done
set -- $args
verb=$1; [ $# -gt 0 ] && shift
known() { [ -n "$(unit_get "$1" enabled)" ] || [ -f "$FAKE_ROOT/etc/systemd/system/$1.service" ] || [ -f "$FAKE_ROOT/etc/systemd/system/$1" ]; }
start() {
  journal "systemctl $2 $1"
  if ! known "$1"; then echo "Failed to $2 $1.service: Unit $1.service not found." >&2; exit 5; fi
  if [ -f "$FAKE_STATE/fail/unit-$1" ]; then unit_set "$1" active failed; echo "Job for $1.service failed because the control process exited with error code." >&2; exit 1; fi
  if [ -f "$FAKE_STATE/startlimit/unit-$1" ]; then echo "Job for $1.service failed. See 'systemctl status $1.service' (Start request repeated too quickly)." >&2; exit 1; fi
  unit_set "$1" active active
}
case $verb in
  # Several units as systemd 252: a line each; is-enabled stops at the first unit it does not know.
  is-active)
    rc=3
    for x; do s=$(unit_get "$(unit_name "$x")" active); s=\${s:-inactive}; echo "$s"; [ "$s" = active ] && rc=0; done
    exit $rc ;;
  is-enabled)
    rc=1
    for x; do
      u=$(unit_name "$x")
      if ! known "$u"; then echo "Failed to get unit file state for $x: No such file or directory" >&2; exit 1; fi
      s=$(unit_get "$u" enabled); s=\${s:-disabled}; echo "$s"; [ "$s" = enabled ] && rc=0
    done
    exit $rc ;;
  enable|disable)
    for x; do
      u=$(unit_name "$x")
      if ! known "$u"; then echo "Failed to $verb unit: Unit file $x does not exist." >&2; exit 1; fi
      unit_set "$u" enabled "\${verb}d"; journal "systemctl $verb $u"
      if [ -n "$now" ]; then
        if [ "$verb" = enable ]; then start "$u" start; else unit_set "$u" active inactive; journal "systemctl stop $u"; fi
      fi
    done ;;
  start|restart)
    for x; do start "$(unit_name "$x")" "$verb"; done ;;
  reload)
    for x; do
      u=$(unit_name "$x"); journal "systemctl reload $u"
      if [ "$(unit_get "$u" active)" != active ]; then echo "Job for $u.service failed: $u.service is not active, cannot reload." >&2; exit 1; fi
      if [ -f "$FAKE_STATE/fail/unit-$u" ]; then echo "Job for $u.service failed." >&2; exit 1; fi
    done ;;
  stop)
    for x; do
      u=$(unit_name "$x")
      if ! known "$u"; then echo "Failed to stop $x: Unit $x not loaded." >&2; exit 5; fi
      unit_set "$u" active inactive; journal "systemctl stop $u"
    done ;;
  reset-failed)
    for x; do u=$(unit_name "$x"); rm -f "$FAKE_STATE/startlimit/unit-$u"; [ "$(unit_get "$u" active)" = failed ] && unit_set "$u" active inactive; done; true ;;
  daemon-reload) journal "systemctl daemon-reload" ;;
  *) journal "systemctl $verb $*" ;;
esac
`,
  'systemd-run': sh`
unit=; on=
while [ $# -gt 0 ]; do
  case $1 in --unit=*) unit=\${1#--unit=} ;; --on-active=*) on=\${1#--on-active=} ;; -*) ;; *) break ;; esac
  shift
done
if [ "$(unit_get "$unit.timer" active)" = active ]; then echo "Failed to start transient timer unit: Unit $unit.timer already exists." >&2; exit 1; fi
mkdir -p "$FAKE_STATE/timers"; printf '%s\n' "$*" > "$FAKE_STATE/timers/$unit"
unit_set "$unit.timer" enabled transient; unit_set "$unit.timer" active active
journal "systemd-run $unit in $on: $*"
`,
  'systemd-detect-virt': sh`
v=$(cat "$FAKE_STATE/virt" 2>/dev/null || echo none); echo "$v"; [ "$v" != none ]
`,
  'apt-get': sh`
mode=; pkgs=
for a; do case $a in update|install) [ -z "$mode" ] && mode=$a ;; -*) ;; *) [ "$mode" = install ] && pkgs="$pkgs $a" ;; esac; done
case $mode in
  update)
    failing apt-get 100
    echo "Hit:1 http://deb.debian.org/debian bookworm InRelease"; echo "Reading package lists..."; journal "apt-get update" ;;
  install)
    failing apt-get-install 100
    mkdir -p "$FAKE_STATE/dpkg"
    for p in $pkgs; do
      [ -f "$FAKE_STATE/dpkg/$p" ] && continue
      : > "$FAKE_STATE/dpkg/$p"
      [ -f "$FAKE_STATE/postinst/$p" ] && . "$FAKE_STATE/postinst/$p"
    done
    journal "apt-get install$pkgs" ;;
esac
`,
  dpkg: sh`
case " $* " in *" --configure -a "*) journal "dpkg --configure -a" ;; *) echo "dpkg (fake): unsupported: $*" >&2; exit 2 ;; esac
`,
  'dpkg-query': sh`
fmt=; missing=0
for a; do
  case $a in
    -f=*|--showformat=*) fmt=\${a#*=} ;;
    -*) ;;
    *) if [ -f "$FAKE_STATE/dpkg/$a" ]; then
         printf '%b' "$(printf '%s' "$fmt" | sed -e "s/[$]{Package}/$a/g" -e 's/[$]{db:Status-Abbrev}/ii /g' -e 's/[$]{Status}/install ok installed/g')"
       else echo "dpkg-query: no packages found matching $a" >&2; missing=1; fi ;;
  esac
done
exit $missing
`,
  chown: sh`
spec=
for a; do
  case $a in
    -*) ;;
    *) if [ -z "$spec" ]; then spec=$a; continue; fi
       [ -e "$a" ] || { echo "chown: cannot access '$a': No such file or directory" >&2; exit 1; }
       ino=$("$FAKE_REAL_STAT" -c %i "$a"); [ -d "$FAKE_STATE/owner" ] || mkdir -p "$FAKE_STATE/owner"
       u=\${spec%%:*}; g=\${spec#*:}
       if [ "$g" = "$spec" ]; then g=root; [ -f "$FAKE_STATE/owner/$ino" ] && read -r _ g < "$FAKE_STATE/owner/$ino"; fi
       echo "$u $g" > "$FAKE_STATE/owner/$ino" ;;
  esac
done
`,
  // stat -c FORMAT FILE with the owner and group chown recorded (root:root by default): the tests are not root.
  stat: sh`
if [ "$1" = -c ] && [ "$2" = '%a %U %G' ] && [ $# -eq 3 ]; then
  set -- $("$FAKE_REAL_STAT" -c '%a %i' "$3") || exit 1
  u=root; g=root
  [ -f "$FAKE_STATE/owner/$2" ] && read -r u g < "$FAKE_STATE/owner/$2"
  echo "$1 $u $g"; exit 0
fi
if [ "$1" = -c ] && [ $# -ge 3 ]; then
  case $2 in *%U*|*%G*)
    fmt=$2; shift 2; [ "$1" = -- ] && shift
    rc=0
    for f; do
      ino=$("$FAKE_REAL_STAT" -c %i -- "$f") || { rc=1; continue; }
      u=root; g=root
      [ -f "$FAKE_STATE/owner/$ino" ] && read -r u g < "$FAKE_STATE/owner/$ino"
      "$FAKE_REAL_STAT" -c "$(printf '%s' "$fmt" | sed -e "s/%U/$u/g" -e "s/%G/$g/g")" -- "$f" || rc=1
    done
    exit $rc ;;
  esac
fi
exec "$FAKE_REAL_STAT" "$@"
`,
  sysctl: sh`
# The kernel's keys are files under the fake root's /proc/sys (the facts read them there), as on a host.
sc_key() { echo "$FAKE_ROOT/proc/sys/$(echo "$1" | tr . /)"; }
sc_put() { f=$(sc_key "$1"); [ -d "\${f%/*}" ] || mkdir -p "\${f%/*}"; echo "$2" > "$f"; }
mode=get
for a; do
  case $a in
    -n|-q|-e) ;;
    -w) mode=set ;;
    -p) mode=load ;;
    *) case $mode in
         get) f=$(sc_key "$a"); if [ -f "$f" ]; then read -r v < "$f"; echo "$v"; else echo "sysctl: cannot stat /proc/sys/$(echo "$a" | tr . /): No such file or directory" >&2; exit 255; fi ;;
         set) failing sysctl; sc_put "\${a%%=*}" "\${a#*=}"; journal "sysctl \${a%%=*}=\${a#*=}" ;;
         load) sed -n 's/^ *\([A-Za-z0-9._-]*\) *= *\(.*\)$/\1 \2/p' "$a" | while read -r k v; do sc_put "$k" "$v"; done; journal "sysctl -p $a" ;;
       esac ;;
  esac
done
`,
  'iptables-restore': sh`
name=$(basename "$0"); fam=4; [ "$name" = ip6tables-restore ] && fam=6
if [ "$1" = --test ] || [ "$1" = -t ]; then
  journal "$name --test"
  failing "$name" 2
  grep -q '^COMMIT' "$2" || { echo "$name: COMMIT expected at line $(wc -l < "$2")" >&2; exit 2; }
  exit 0
fi
failing "$name" 2
mkdir -p "$FAKE_STATE/iptables"; cat > "$FAKE_STATE/iptables/v$fam.new"
grep -q '^COMMIT' "$FAKE_STATE/iptables/v$fam.new" || { echo "$name: COMMIT expected" >&2; exit 2; }
mv -f "$FAKE_STATE/iptables/v$fam.new" "$FAKE_STATE/iptables/v$fam"; journal "$name"
`,
  'iptables-save': sh`
fam=4; [ "$(basename "$0")" = ip6tables-save ] && fam=6
if [ -f "$FAKE_STATE/iptables/v$fam" ]; then echo "# Generated by fake $(basename "$0")"; grep -v '^#' "$FAKE_STATE/iptables/v$fam"
else printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n'; fi
`,
  // The live tables as \`iptables -S\` lists them: ufw's user chains while ufw is enabled, as the real ufw loads them
  // (foobar reads ufw's status from them).
  iptables: sh`
[ "$1" = -S ] || { echo "iptables: fake: unsupported: $*" >&2; exit 1; }
printf -- '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n'
grep -q '^ENABLED=yes' "$FAKE_ROOT/etc/ufw/ufw.conf" 2>/dev/null && printf -- '-N ufw-user-input\n-N ufw-user-output\n-N ufw-user-forward\n'
exit 0
`,
  ufw: sh`
E=$FAKE_ROOT/etc/ufw; D=$FAKE_ROOT/etc/default/ufw
mkdir -p "$E"
[ "$1" = --force ] && shift
setconf() { if grep -q "^$2=" "$1" 2>/dev/null; then sed -i "s|^$2=.*|$2=$3|" "$1"; else echo "$2=$3" >> "$1"; fi; }
case $1 in
  status)
    if grep -q '^ENABLED=yes' "$E/ufw.conf" 2>/dev/null; then echo "Status: active"; else echo "Status: inactive"; fi ;;
  enable) failing ufw; setconf "$E/ufw.conf" ENABLED yes; journal "ufw enable"; echo "Firewall is active and enabled on system startup" ;;
  disable) setconf "$E/ufw.conf" ENABLED no; journal "ufw disable" ;;
  reset) setconf "$E/ufw.conf" ENABLED no; : > "$E/user.rules"; : > "$E/user6.rules"; journal "ufw reset" ;;
  default)
    case $2 in deny) p=DROP ;; allow) p=ACCEPT ;; *) p=REJECT ;; esac
    case $3 in incoming) k=DEFAULT_INPUT_POLICY ;; outgoing) k=DEFAULT_OUTPUT_POLICY ;; *) k=DEFAULT_FORWARD_POLICY ;; esac
    setconf "$D" "$k" "\"$p\"" ;;
  allow|deny|reject|limit)
    action=$1; shift; dir=in; proto=any; from=; port=any; comment=
    while [ $# -gt 0 ]; do
      case $1 in in|out) dir=$1 ;; proto) proto=$2; shift ;; from) from=$2; shift ;; port) port=$2; shift ;; comment) comment=$2; shift ;; esac
      shift
    done
    hex=$(printf '%s' "$comment" | od -An -tx1 | tr -d ' \n')
    add() {
      line="### tuple ### $action $proto $port $2 any $3 $dir\${hex:+ comment=$hex}"
      grep -qxF "$line" "$1" 2>/dev/null || echo "$line" >> "$1"
    }
    case $from in
      '') add "$E/user.rules" 0.0.0.0/0 0.0.0.0/0; grep -q '^IPV6=yes' "$D" 2>/dev/null && add "$E/user6.rules" ::/0 ::/0 ;;
      *:*) add "$E/user6.rules" ::/0 "\${from%/128}" ;;
      *) add "$E/user.rules" 0.0.0.0/0 "\${from%/32}" ;;
    esac
    journal "ufw $action $proto $port from \${from:-anywhere}" ;;
  *) echo "ufw: fake: unsupported: $*" >&2; exit 1 ;;
esac
`,
  // HAProxy's runtime API (echo CMD | socat stdio /run/haproxy/admin.sock): the servers of backend `web` as in the
  // host's haproxy.cfg; a server is UP unless the test marked it down (fail/haproxy-down-NAME).
  socat: sh`
[ "$(unit_get haproxy active)" = active ] || { echo "socat: E connect(5, AF=1 \"$2\", 27): Connection refused" >&2; exit 1; }
read -r cmd
S=$FAKE_STATE/haproxy; mkdir -p "$S"
servers() { awk '/^(backend|frontend|listen|defaults|global)/{b=$2} b=="web" && $1=="server"{print $2}' "$FAKE_ROOT/etc/haproxy/haproxy.cfg"; }
case $cmd in
  "set server web/"*" state "*)
    srv=\${cmd#set server web/}; srv=\${srv%% *}; st=\${cmd##* }
    case $st in drain) echo 8 > "$S/$srv.admin" ;; maint) echo 1 > "$S/$srv.admin" ;; *) echo 0 > "$S/$srv.admin" ;; esac
    journal "haproxy $st $srv" ;;
  "show servers state web")
    echo 1
    echo "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl"
    i=0
    for s in $(servers); do
      i=$((i + 1)); admin=$(cat "$S/$s.admin" 2>/dev/null || echo 0); op=2; check=6
      [ -f "$FAKE_STATE/fail/haproxy-down-$s" ] && { op=0; check=8; }
      echo "3 web $i $s 10.0.0.$i $op $admin 1 1 10 $check 3 4 6 0 0 0 - 443 - 1"
    done ;;
  "show stat")
    # Traffic: each read adds the server's rate file (ok errors rtime) to its counters (haproxyTraffic).
    echo "# pxname,svname,qcur,qmax,scur,smax,slim,stot,hrsp_2xx,hrsp_5xx,econ,eresp,rtime,status"
    for s in $(servers); do
      ok=0; err=0; rt=0
      [ -f "$S/$s.count" ] && read -r ok err rt < "$S/$s.count"
      if [ -f "$S/$s.rate" ]; then read -r rok rerr rrt < "$S/$s.rate"; ok=$((ok + rok)); err=$((err + rerr)); rt=$rrt; fi
      echo "$ok $err $rt" > "$S/$s.count"
      admin=$(cat "$S/$s.admin" 2>/dev/null || echo 0); st=UP
      [ "$admin" = 8 ] && st=DRAIN; [ "$admin" = 1 ] && st=MAINT
      [ -f "$FAKE_STATE/fail/haproxy-down-$s" ] && st=DOWN
      echo "web,$s,0,0,$(cat "$S/$s.scur" 2>/dev/null || echo 0),0,,0,$ok,$err,0,0,$rt,$st"
    done ;;
  *) echo "Unknown command: $cmd" ;;
esac
`,
  curl: sh`
failing curl 7
exit 0
`,
  logger: 'exit 0',
  // ip -o [-4] addr show [to ADDRESS | dev NAME]: the host's addresses as `ip -o addr` prints them, from the state
  // (its own address on eth0 from the start; addAddress/removeAddress for a floating one).
  ip: sh`
to=; dev=
while [ $# -gt 0 ]; do case $1 in to) to=$2; shift ;; dev) dev=$2; shift ;; esac; shift; done
f=$FAKE_STATE/ip-addr
[ -f "$f" ] || exit 0
if [ -n "$to" ]; then grep -F " $to/" "$f" || true
elif [ -n "$dev" ]; then grep "^[0-9]*: $dev " "$f" || true
else cat "$f"; fi
`,
}
/** The daemons' own config checkers and probes: pass unless the test made them fail (`fail(name)`). */
for (const name of ['nginx', 'haproxy', 'sshd', 'rsyslogd', 'fail2ban-client', 'usbguard', 'keepalived']) {
  STUBS[name] = sh`
journal "$(basename "$0") $*"
failing "$(basename "$0")"
exit 0
`
}
STUBS['ip6tables-restore'] = STUBS['iptables-restore']!
STUBS['ip6tables-save'] = STUBS['iptables-save']!

/** Real tools the scripts may use: they only read, or change files under the paths they are given. */
const TOOLS = [
  'sh',
  'cat',
  'cp',
  'mv',
  'rm',
  'mkdir',
  'rmdir',
  'chmod',
  'ln',
  'touch',
  'ls',
  'find',
  'readlink',
  'mktemp',
  'sed',
  'grep',
  'awk',
  'sort',
  'uniq',
  'cut',
  'head',
  'tail',
  'tr',
  'wc',
  'tee',
  'xargs',
  'od',
  'cmp',
  'diff',
  'dirname',
  'basename',
  'env',
  'date',
  'sleep',
  'timeout',
  'id',
  'seq',
  'expr',
  'base64',
  'sha256sum',
  'tar',
  'gzip',
]

interface Shared {
  dir: string
  stubs: string
  tools: string
  lib: string
  realStat: string
}
let shared: Shared | undefined

function setUp(): Shared {
  if (shared) return shared
  const dir = mkdtempSync(join(tmpdir(), 'foobar-fake-bin-'))
  made.push(dir)
  chmodSync(dir, 0o755)
  const stubs = join(dir, 'stubs')
  const tools = join(dir, 'tools')
  mkdirSync(stubs)
  mkdirSync(tools)
  const which = (name: string) => ['/usr/bin', '/bin'].map((d) => join(d, name)).find((p) => existsSync(p))
  for (const t of TOOLS) {
    const real = which(t)
    if (real) symlinkSync(real, join(tools, t))
  }
  const realStat = which('stat')
  if (!realStat) throw new Error('fake-host: no stat on this machine')
  const lib = join(dir, 'lib.sh')
  writeFileSync(lib, LIB)
  for (const [name, body] of Object.entries(STUBS)) {
    writeFileSync(join(stubs, name), `#!/bin/sh\n. "$FAKE_LIB"\n${body.trimStart()}`)
    chmodSync(join(stubs, name), 0o755)
  }
  for (const d of [stubs, tools]) chmodSync(d, 0o755)
  return (shared = {dir, stubs, tools, lib, realStat})
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* What a package brings on a Debian host (only what the tests look at): files, and units enabled and started.     */

interface PackageImage {
  files?: Record<string, string>
  /** Units enabled and started by the package (Debian starts a daemon on install). */
  units?: string[]
  /** Units installed but not started. */
  known?: string[]
}

const DEBIAN_PACKAGES: Record<string, PackageImage> = {
  nginx: {
    files: {
      '/etc/nginx/nginx.conf': 'user www-data;\nhttp { include /etc/nginx/conf.d/*.conf; include /etc/nginx/sites-enabled/*; }\n',
      '/etc/nginx/sites-enabled/default': 'server {\n\tlisten 80 default_server;\n\troot /var/www/html;\n}\n',
    },
    units: ['nginx'],
  },
  haproxy: {files: {'/etc/haproxy/haproxy.cfg': 'global\n\tlog /dev/log local0\ndefaults\n\tmode http\n'}, units: ['haproxy']},
  ufw: {
    files: {
      '/etc/default/ufw': 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\nDEFAULT_FORWARD_POLICY="DROP"\n',
      '/etc/ufw/ufw.conf': 'ENABLED=no\nLOGLEVEL=low\n',
      '/etc/ufw/user.rules': '',
      '/etc/ufw/user6.rules': '',
    },
    units: ['ufw'],
  },
  'iptables-persistent': {known: ['netfilter-persistent']},
  'netfilter-persistent': {known: ['netfilter-persistent']},
  'openssh-server': {
    files: {'/etc/ssh/sshd_config': 'Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n'},
    units: ['ssh'],
  },
  fail2ban: {units: ['fail2ban']},
  usbguard: {units: ['usbguard']},
  rsyslog: {units: ['rsyslog']},
  'mariadb-server': {units: ['mariadb']},
  // Installed, not started: Debian's unit waits for a non-empty keepalived.conf (ConditionFileNotEmpty).
  keepalived: {known: ['keepalived']},
  // apt's own timers (Debian ships them with apt, enabled); here they come with the package that uses them.
  'unattended-upgrades': {units: ['apt-daily.timer', 'apt-daily-upgrade.timer']},
}

function postinst(image: PackageImage): string {
  const lines: string[] = []
  for (const [path, content] of Object.entries(image.files ?? {})) {
    lines.push(`mkdir -p "$FAKE_ROOT${dirname(path)}"`, `cat > "$FAKE_ROOT${path}" <<'FAKE_EOF'`, content.replace(/\n$/, ''), 'FAKE_EOF')
  }
  // Started as deb-systemd-invoke starts them: unless a policy-rc.d refuses (101), as foobar's does in its transaction.
  for (const u of image.units ?? [])
    lines.push(
      `unit_set ${u} enabled enabled`,
      `fb_p=0; [ ! -f "$FAKE_ROOT/usr/sbin/policy-rc.d" ] || sh "$FAKE_ROOT/usr/sbin/policy-rc.d" ${u} start || fb_p=$?`,
      `[ "$fb_p" = 101 ] || unit_set ${u} active active`,
    )
  for (const u of image.known ?? []) lines.push(`[ -n "$(unit_get ${u} enabled)" ] || unit_set ${u} enabled disabled`)
  return `${lines.join('\n')}\n`
}

/* ---------------------------------------------------------------------------------------------------------------- */

export class FakeHost implements Runner {
  /** Every command run on this host, in order. */
  readonly log: Command[] = []
  /** The host's `/` on this machine. */
  readonly root: string
  /** The stubs' state: units, packages, sysctl, iptables, HAProxy, owners, journal. */
  readonly state: string
  readonly shell: boolean
  /** The default answer of a host without a shell. */
  answer: Answer
  clientAddr: string | undefined
  /** When set, opening a new connection to the host fails with this message (see fakeTransport). */
  refusing: string | false = false
  opens = 0
  closes = 0
  private down = false
  private readonly dir: string
  private readonly bin: string
  private readonly handlers: Array<{match: Match; handler: Handler}> = []
  private readonly drops: Array<{match: Match; left: number}> = []
  private readonly servers: Server[] = []

  constructor(
    readonly host: Host,
    private readonly options: FakeHostOptions = {},
  ) {
    const o = options
    if (o.holds) this.hold = (script, then) => this.holdLock(script, then)
    this.shell = o.shell ?? true
    this.answer = o.answer ?? {code: 0, stdout: '', stderr: ''}
    this.clientAddr = o.clientAddress ?? '10.77.0.1'
    this.dir = mkdtempSync(join(tmpdir(), `foobar-fake-${host.name}-`))
    made.push(this.dir)
    chmodSync(this.dir, 0o755)
    this.root = join(this.dir, 'root')
    this.state = join(this.dir, 'state')
    this.bin = join(this.dir, 'bin')
    for (const d of [this.root, this.state, this.bin]) mkdirs(d)
    if (!this.shell || o.bare) return
    setUp()
    // A minimal Debian 12 that foobar reached over SSH.
    this.put('/etc/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    put(join(this.state, 'ip-addr'), '')
    this.addAddress(`${host.address}/${host.family === 4 ? 24 : 64}`)
    this.put('/etc/crontab', '# /etc/crontab: system-wide crontab\n')
    for (const d of ['d', 'daily', 'hourly', 'weekly', 'monthly']) this.mkdir(`/etc/cron.${d}`)
    for (const d of ['/etc/ssh/sshd_config.d', '/etc/systemd/system', '/var/lib', '/run', '/opt', '/root', '/tmp', '/usr/sbin'])
      this.mkdir(d)
    put(join(this.state, 'virt'), `${o.virt ?? 'kvm'}\n`)
    // The kernel's keys that hardening sets, each 0 to begin with.
    for (const k of Object.keys(SYSCTL)) this.put(`/proc/sys/${k.replaceAll('.', '/')}`, '0\n')
    for (const [name, image] of Object.entries(DEBIAN_PACKAGES)) put(join(this.state, 'postinst', name), postinst(image))
    for (const p of ['openssh-server', ...(o.packages ?? [])]) this.install(p)
  }

  /* ---- Runner ---- */

  async run(script: string, options: RunOptions = {}): Promise<RunResult> {
    const cmd: Command = {host: this.host.name, seq: ++sequence, script, stdin: options.stdin, root: options.root ?? true}
    this.log.push(cmd)
    if (this.down) {
      cmd.lost = true
      throw new ConnectionLost(this.host.name)
    }
    const t0 = performance.now()
    let answer: Answer | undefined
    for (const h of [...this.handlers].reverse()) {
      if (!matches(h.match, cmd)) continue
      answer = ((await h.handler(cmd, this)) as Answer | undefined) ?? undefined
      if (answer) break
    }
    answer ??= this.shell ? await this.runShell(script, options.stdin) : this.answer
    const result: RunResult = {code: answer.code ?? 0, stdout: answer.stdout ?? '', stderr: answer.stderr ?? ''}
    cmd.result = result
    cmd.ms = performance.now() - t0
    const drop = this.drops.find((d) => d.left > 0 && matches(d.match, cmd))
    if (drop) {
      drop.left--
      this.down = true
      cmd.lost = true
      throw new ConnectionLost(this.host.name)
    }
    if ((options.check ?? true) && result.code !== 0) {
      throw new RemoteError(
        this.host.name,
        script.length > 120 ? `${script.slice(0, 117)}...` : script,
        result.code,
        result.stderr || result.stdout,
      )
    }
    return result
  }

  async readFile(path: string): Promise<string | undefined> {
    const r = await this.run(`cat ${shq(path)}`, {check: false})
    return r.code === 0 ? r.stdout : undefined
  }

  async pipe(from: string, target: Runner, to: string): Promise<{dump: RunResult; load: RunResult}> {
    const dump = await this.run(from, {check: false})
    return {dump, load: await target.run(to, {stdin: dump.stdout, check: false})}
  }

  async clientAddress(): Promise<string | undefined> {
    return this.clientAddr
  }

  localAddress(): string | undefined {
    const o = this.options.localAddress
    return o === null ? undefined : (o ?? this.clientAddr)
  }

  close(): void {
    this.closes++
  }

  hold?: Runner['hold']

  /** Runner.hold of a host that `holds`. */
  private async holdLock(script: string, then?: {script: string}): ReturnType<NonNullable<Runner['hold']>> {
    this.log.push({host: this.host.name, seq: ++sequence, script, root: true})
    if (!then) return {line: 'locked', release: () => {}}
    const at = this.log.length
    const result = await this.run(then.script, {check: false})
    this.log[at]!.inHold = true
    return {line: 'locked', release: () => {}, then: result}
  }

  /**
   * A copy of the host as it is now (files, units, packages, kernel state, journal; not the handlers, the log or
   * sockets), much faster than provisioning another one.
   */
  clone(): FakeHost {
    const c = new FakeHost(this.host, {...this.options, bare: true})
    for (const d of ['root', 'state', 'bin']) execFileSync('cp', ['-a', `${join(this.dir, d)}/.`, join(c.dir, d)])
    // Owners are kept by inode: the copies have inodes of their own.
    const owners = join(c.state, 'owner')
    if (existsSync(owners)) {
      const inodes = new Map<number, string>()
      for (const p of readdirSync(this.root, {recursive: true}) as string[]) inodes.set(lstatSync(join(this.root, p)).ino, p)
      const records = readdirSync(owners).map((ino) => [ino, readFileSync(join(owners, ino), 'utf8')] as const)
      rmSync(owners, {recursive: true})
      for (const [ino, owner] of records) {
        const p = inodes.get(Number(ino))
        if (p !== undefined) put(join(owners, String(lstatSync(join(c.root, p)).ino)), owner)
      }
    }
    c.clientAddr = this.clientAddr
    c.answer = this.answer
    return c
  }

  /* ---- Scripting ---- */

  /** Answers (or observes) the commands that match; the latest handler that answers wins. Returns its removal. */
  on(match: Match, handler: Handler): () => void {
    const entry = {match, handler}
    this.handlers.push(entry)
    return () => {
      const i = this.handlers.indexOf(entry)
      if (i >= 0) this.handlers.splice(i, 1)
    }
  }

  /**
   * The connection drops right after a matching command ran on the host (its effects stay): that run throws
   * ConnectionLost, and so does every later one until the host is connected to again.
   */
  dropAfter(match: Match, times = 1): void {
    this.drops.push({match, left: times})
  }

  /** A new connection (fakeTransport.open): the host answers again after a dropped one. */
  connected(): void {
    this.opens++
    this.down = false
  }

  /** Makes the stubbed command (or `unit-NAME` for a unit, `haproxy-down-NAME` for a backend) fail with `message`. */
  fail(name: string, message = `${name}: failed (fake)`, opts: {once?: boolean} = {}): void {
    put(join(this.state, 'fail', name), `${message}\n`)
    if (opts.once) put(join(this.state, 'fail', `${name}.once`), '1\n')
  }

  /** Makes systemd refuse to start `unit` ("Start request repeated too quickly") until its failed state is reset. */
  startLimited(unit: string): void {
    put(join(this.state, 'startlimit', `unit-${unit}`), '1\n')
  }

  heal(name: string): void {
    rmSync(join(this.state, 'fail', name), {force: true})
  }

  /** A command of this host only (a shell script body), ahead of the shared stubs on PATH. */
  command(name: string, body: string): void {
    put(join(this.bin, name), `#!/bin/sh\n. "$FAKE_LIB"\n${body}\n`, 0o755)
  }

  /** Installs a package as apt-get would (its files and units from the fake Debian's images). */
  install(pkg: string): void {
    put(join(this.state, 'dpkg', pkg), '')
    const image = DEBIAN_PACKAGES[pkg]
    if (!image) return
    for (const [path, content] of Object.entries(image.files ?? {})) this.put(path, content)
    for (const u of image.units ?? []) this.setUnit(u, 'enabled', 'active')
    for (const u of image.known ?? []) if (!this.unit(u).enabled) this.setUnit(u, 'disabled', 'inactive')
  }

  /** A listening Unix socket at `path` (e.g. HAProxy's admin socket, which `test -S` looks for). */
  async listen(path: string): Promise<void> {
    mkdirs(dirname(this.path(path)))
    const server = createServer()
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.path(path), resolve))
    server.unref()
    this.servers.push(server)
  }

  /** A revert timer armed with systemd-run runs now (its time is up). */
  async fireTimer(unit: string): Promise<RunResult> {
    const command = this.file(`${this.state}/timers/${unit}`, true)
    if (!command || this.unit(`${unit}.timer`).active !== 'active') throw new Error(`${this.host.name}: no armed timer ${unit}`)
    this.setUnit(`${unit}.timer`, 'transient', 'inactive')
    put(join(this.state, 'journal'), `${this.file(join(this.state, 'journal'), true) ?? ''}timer ${unit} fired\n`)
    const a = await this.runShell(command.trim(), undefined, false)
    return {code: a.code ?? 0, stdout: a.stdout ?? '', stderr: a.stderr ?? ''}
  }

  /* ---- Looking at the host ---- */

  /** The path on this machine of a path on the host. */
  path(p: string): string {
    return join(this.root, p)
  }

  /** A file's content on the host (`raw`: a path on this machine), or undefined. */
  file(p: string, raw = false): string | undefined {
    const local = raw ? p : this.path(p)
    try {
      return readFileSync(local, 'utf8')
    } catch {
      return undefined
    }
  }

  exists(p: string): boolean {
    try {
      lstatSync(this.path(p))
      return true
    } catch {
      return false
    }
  }

  /** Directory entries on the host (none when it does not exist). */
  ls(dir: string): string[] {
    try {
      return readdirSync(this.path(dir)).sort()
    } catch {
      return []
    }
  }

  mode(p: string): number {
    return statSync(this.path(p)).mode & 0o7777
  }

  /** `owner:group` as chown set it on the host (root:root unless chown said otherwise). */
  owner(p: string): string {
    const rec = this.file(join(this.state, 'owner', String(statSync(this.path(p)).ino)), true)
    return rec ? rec.trim().replace(' ', ':') : 'root:root'
  }

  /** Writes a file on the host as an administrator would (by hand, outside foobar). */
  put(p: string, content: string, mode = 0o644): void {
    put(this.path(p), content, mode)
  }

  mkdir(p: string, mode = 0o755): void {
    mkdirs(this.path(p))
    chmodSync(this.path(p), mode)
  }

  remove(p: string): void {
    rmSync(this.path(p), {recursive: true, force: true, maxRetries: 5})
  }

  unit(name: string): {enabled?: string; active: string} {
    const get = (k: string) => this.file(join(this.state, 'units', `${name}.${k}`), true)?.trim()
    return {enabled: get('enabled'), active: get('active') ?? 'inactive'}
  }

  setUnit(name: string, enabled: string, active: string): void {
    put(join(this.state, 'units', `${name}.enabled`), `${enabled}\n`)
    put(join(this.state, 'units', `${name}.active`), `${active}\n`)
  }

  installed(pkg: string): boolean {
    return existsSync(join(this.state, 'dpkg', pkg))
  }

  sysctl(key: string): string | undefined {
    return this.file(`/proc/sys/${key.replaceAll('.', '/')}`)?.trim()
  }

  /** The kernel's live iptables rules (as iptables-restore loaded them). */
  iptables(family: 4 | 6 = 4): string | undefined {
    return this.file(join(this.state, 'iptables', `v${family}`), true)
  }

  /** An address on eth0, as `ip -o addr` prints it (a floating address taken by keepalived, say). */
  addAddress(cidr: string): void {
    const file = join(this.state, 'ip-addr')
    const family = cidr.includes(':') ? 'inet6' : 'inet'
    put(
      file,
      `${this.file(file, true) ?? ''}2: eth0    ${family} ${cidr} scope global eth0\\       valid_lft forever preferred_lft forever\n`,
    )
  }

  removeAddress(address: string): void {
    const file = join(this.state, 'ip-addr')
    const lines = (this.file(file, true) ?? '').split('\n').filter((l) => l !== '' && !l.includes(` ${address}/`))
    put(file, lines.map((l) => `${l}\n`).join(''))
  }

  /** Whether the host has the address (on any interface). */
  hasAddress(address: string): boolean {
    return (this.file(join(this.state, 'ip-addr'), true) ?? '').includes(` ${address}/`)
  }

  /** HAProxy's admin state of a backend server (0 ready, 8 drain, 1 maintenance). */
  haproxyAdminState(server: string): number {
    return Number(this.file(join(this.state, 'haproxy', `${server}.admin`), true)?.trim() ?? 0)
  }

  /** Traffic a backend server gets: every `show stat` read adds `ok` 2xx and `errors` 5xx responses; `rtimeMs` its average. */
  haproxyTraffic(server: string, ok: number, errors = 0, rtimeMs = 5): void {
    put(join(this.state, 'haproxy', `${server}.rate`), `${ok} ${errors} ${rtimeMs}\n`)
  }

  /** What the stubs did, one line each ("systemctl reload nginx", "apt-get install nginx", "haproxy drain web1"). */
  journal(): string[] {
    return this.unrewrite(this.file(join(this.state, 'journal'), true) ?? '')
      .split('\n')
      .filter(Boolean)
  }

  /** The recorded commands whose script matches. */
  commands(match?: Match): Command[] {
    return match === undefined ? [...this.log] : this.log.filter((c) => matches(match, c))
  }

  /** Removes the host's directories (also done when the process exits). */
  cleanup(): void {
    for (const s of this.servers) s.close()
    rmSync(this.dir, {recursive: true, force: true, maxRetries: 5})
  }

  /* ---- The shell ---- */

  private rewrite(text: string): string {
    return text.replace(ABSOLUTE, (_m, before: string, top: string) => `${before}${this.root}/${top}`)
  }

  private unrewrite(text: string): string {
    return text.split(`${this.root}/`).join('/').split(this.root).join('/')
  }

  /** Runs a script with /bin/sh in the host's root, with the stubs on PATH (as nobody when this is root). */
  private runShell(script: string, stdin: string | undefined, rewriteScript = true): Promise<Answer> {
    const {stubs, tools, lib, realStat} = setUp()
    const text = rewriteScript ? this.rewrite(script) : script
    const input = stdin === undefined ? '' : isFileWrite(script) ? stdin : this.rewrite(stdin)
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', text], {
        cwd: this.root,
        env: {
          PATH: `${this.bin}:${stubs}:${tools}`,
          LC_ALL: 'C',
          LANG: 'C',
          HOME: this.path('/root'),
          TMPDIR: this.path('/tmp'),
          FAKE_ROOT: this.root,
          FAKE_STATE: this.state,
          FAKE_LIB: lib,
          FAKE_REAL_STAT: realStat,
        },
        ...(AS_ROOT ? {uid: NOBODY, gid: NOBODY} : {}),
      })
      const out: Buffer[] = []
      const err: Buffer[] = []
      child.stdout.on('data', (b: Buffer) => out.push(b))
      child.stderr.on('data', (b: Buffer) => err.push(b))
      child.stdin.on('error', () => {}) // a script that does not read its stdin
      child.on('error', reject)
      child.on('close', (code, signal) =>
        resolve({
          code: code ?? (signal ? 128 : 1),
          stdout: this.unrewrite(Buffer.concat(out).toString('utf8')),
          stderr: this.unrewrite(Buffer.concat(err).toString('utf8')),
        }),
      )
      child.stdin.end(input)
    })
  }
}

function matches(m: Match, cmd: Command): boolean {
  if (typeof m === 'function') return m(cmd)
  if (typeof m === 'string') return cmd.script.includes(m)
  m.lastIndex = 0
  return m.test(cmd.script)
}

function shq(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`
}

/* ---------------------------------------------------------------------------------------------------------------- */

export interface FakeTransport extends Transport {
  /** Host names in the order connections were opened (runs, fresh connections of guarded steps). */
  opened: string[]
}

/** Opens the fake hosts by name; a host with `refusing` set refuses new connections (as SSH would). */
export function fakeTransport(hosts: FakeHost[]): FakeTransport {
  const byName = new Map(hosts.map((h) => [h.host.name, h]))
  const opened: string[] = []
  return {
    opened,
    async open(host: Host): Promise<Runner> {
      const fake = byName.get(host.name)
      if (!fake) throw new Error(`fake transport: no fake host ${host.name}`)
      opened.push(host.name)
      if (fake.refusing) {
        throw new RemoteError(
          host.name,
          'ssh connect',
          null,
          fake.refusing,
          `${host.name}: cannot connect to ${sshUser(host)}@${host.address}:${sshPort(host)}: ${fake.refusing}`,
        )
      }
      fake.connected()
      return fake
    },
  }
}

/** A fake host for every host of the inventory, and the transport that opens them. */
export function fakeFleet(inventory: Inventory, o: FakeHostOptions | ((h: Host) => FakeHostOptions) = {}): FakeFleet {
  return fleetOf(Object.fromEntries(inventory.hosts.map((h) => [h.name, new FakeHost(h, typeof o === 'function' ? o(h) : o)])))
}

export interface FakeFleet {
  hosts: Record<string, FakeHost>
  transport: FakeTransport
  /** Every command of every host, in the order they ran. */
  log: () => Command[]
  /** The same hosts as they are now, to change independently (see FakeHost.clone). */
  clone: () => FakeFleet
  cleanup: () => void
}

function fleetOf(hosts: Record<string, FakeHost>): FakeFleet {
  const all = Object.values(hosts)
  return {
    hosts,
    transport: fakeTransport(all),
    log: () => all.flatMap((h) => h.log).sort((a, b) => a.seq - b.seq),
    clone: () => fleetOf(Object.fromEntries(Object.entries(hosts).map(([n, h]) => [n, h.clone()]))),
    cleanup: () => {
      for (const h of all) h.cleanup()
    },
  }
}

/* ---------------------------------------------------------------------------------------------------------------- */
/* Fixtures for runs through the fake hosts.                                                                         */

/**
 * What a roll did, across hosts, in the order it happened: lb1's drains and enables (`drain web1`, `ready web1`)
 * and each web server's nginx reload (`reload nginx on web1`).
 */
export function rollEvents(fleet: FakeFleet): string[] {
  return fleet.log().flatMap((c) => {
    const lb = /^echo 'set server web\/(\S+) state (\S+)'/.exec(c.script)
    if (c.host === 'lb1' && lb) return [`${lb[2]} ${lb[1]}`]
    if (c.script === 'systemctl reload nginx') return [`reload nginx on ${c.host}`]
    return []
  })
}

/**
 * Until the returned function is called, every setTimeout waits `scale` times as long: the engine's fixed pauses
 * between retries and polls (a second here, half a second there) shrink to milliseconds. Deadlines are unchanged
 * (Date.now is real): a loop that waits for one just goes round more often. Vitest's own timers are not affected.
 */
export function fastTimers(scale = 0.01): () => void {
  const real = globalThis.setTimeout
  const fast = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) =>
    real(fn, Math.floor((ms ?? 0) * scale), ...args)) as typeof setTimeout
  globalThis.setTimeout = Object.assign(fast, real)
  return () => {
    globalThis.setTimeout = real
  }
}

/** Key material for a run (runPlan's `material`): no certificate authority or state directory involved. */
export const TEST_MATERIAL: TlsMaterial = {
  siteChain:
    '-----BEGIN CERTIFICATE-----\nSITE LEAF\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n',
  siteKey: '-----BEGIN PRIVATE KEY-----\nSITE-SECRET\n-----END PRIVATE KEY-----\n',
  backendCa: '-----BEGIN CERTIFICATE-----\nBACKEND CA\n-----END CERTIFICATE-----\n',
  internalCa: '-----BEGIN CERTIFICATE-----\nINTERNAL CA\n-----END CERTIFICATE-----\n',
  leaves: {},
}

/**
 * A handler's answer for a probe round (apply.ts probeAllScript, its services in turn: one service alone is probed so)
 * in which each service is active and the health checks that `fails` matches fail, printing `words` and exiting
 * `code`; the others pass.
 */
export function failingCheck(
  script: string,
  words: string,
  code = 22,
  fails = /curl -fsSk -o \/dev\/null --resolve/,
): {code: number; stdout: string; stderr: string} {
  if (script.includes('mktemp')) throw new Error('failingCheck: a round of probes run at once; answer it in the test')
  const stdout = script
    .split(`echo '${PROBE_OF}`)
    .slice(1)
    .map((part) => {
      const name = part.slice(0, part.indexOf("'"))
      const check = fails.test(part) ? `${words}${PROBE_RC}${code}` : `${PROBE_RC}0`
      return `${PROBE_OF}${name}\n${PROBE_LINE}active\n${check}\n`
    })
    .join('')
  return {code: 0, stdout, stderr: ''}
}

/** Health gates without the real settle and probe intervals (a failing gate gives up after 80 ms). */
export const FAST_HEALTH: HealthTiming = {settleMs: 0, everyMs: 5, timeoutMs: 80}

/**
 * An inventory like the lab's (ufw, self-signed, no monitoring, no database): `hosts` as `name address role...`.
 * `lean` switches off every hardening item but sshd (its guarded reload stays): fewer files, packages and facts,
 * faster runs.
 */
export function testInventory(hosts: string[], o: {lean?: boolean; yaml?: string} = {}): Inventory {
  const lean = o.lean
    ? `hardening:\n  skip: {${['policy', 'audit_tools', 'usb', 'unattended_upgrades', 'fail2ban', 'sysctl', 'permissions', 'services'].map((i) => `${i}: not under test`).join(', ')}}\n`
    : ''
  const list = hosts.map((line) => {
    const [name, address, ...roles] = line.split(' ')
    return `  - {name: ${name}, address: ${address}, roles: [${roles.join(', ')}]}`
  })
  const text = [
    'site: {domain: www.foobar.test, aliases: [foobar.test], email: admin@foobar.test}',
    'ssh: {user: deploy, sudo: true}',
    'firewall: {backend: ufw, admin_cidrs: [10.77.0.1/32]}',
    'monitoring: {enabled: false}',
    lean + (o.yaml ?? ''),
    'hosts:',
    ...list,
    '',
  ].join('\n')
  return parseInventory(text, '/nonexistent/fake-inventory.yml')
}
