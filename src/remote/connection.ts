import {randomBytes} from 'node:crypto'
import {appendFileSync, existsSync, mkdirSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, resolve} from 'node:path'
import {createRequire} from 'node:module'
import type {Config, NodeSSH} from 'node-ssh'
import type ssh2 from 'ssh2'
import {RemoteError, UserError, shownCommand} from '../util/errors.js'
import type {Host} from '../inventory/index.js'
import {SSH_DEFAULTS} from '../inventory/defaults.js'
import {THEN_SLOT} from '../util/lock.js'
import {shq} from '../util/shell.js'
import {trace} from '../util/trace.js'
import {type HostKeyVerdict, checkHostKey, fingerprint, keyTypeOf, knownHostsLine, lookupName, parseKnownHosts} from './known-hosts.js'
import {COMMAND_TIMEOUT_MS, type Held, type RunOptions, type RunResult, type Runner, TIMED_OUT, type Transport} from './runner.js'
import {LocalFileError, readLocalFile, readableByOthers} from './local-file.js'
import {type SshConfigEntry, loadSshConfig, loadSshConfigs, resolveSshConfig} from './ssh-config.js'

export type {RunOptions, RunResult, Runner, Transport} from './runner.js'

export interface ConnectOptions {
  /** Trust on first use: record an unknown host's key (a changed key is still refused). */
  acceptNewHostKeys?: boolean
  /** The ssh_config to resolve hosts with (`ssh -G -F FILE`); default: OpenSSH's own (~/.ssh/config, /etc/ssh/ssh_config). */
  sshConfigFile?: string
}

/**
 * Channels (commands) open at once on one connection. sshd refuses more than its MaxSessions, which foobar's
 * hardening sets to 2 by default (`hardening.max_sessions`, never below 2): further commands wait their turn.
 */
export const MAX_CHANNELS = 2

/** foobar's own user and port, where neither the inventory nor ssh_config sets one (src/inventory/defaults.ts). */
const DEFAULT_USER: string = SSH_DEFAULTS.user
const DEFAULT_PORT: number = SSH_DEFAULTS.port

/** A fixed environment, so that remote commands never depend on the user's shell rc files or locale. */
/**
 * node-ssh (and ssh2 under it) loaded when a connection is first opened: a command that only reads the inventory
 * loads ssh2's key parser alone, to check key files (about 50 ms less of every start here, issue 20). Commands that
 * connect start the load early (cli/base.ts, beside ssh_config's resolution, which waits on child processes).
 */
let nodeSsh: Promise<typeof import('node-ssh')> | undefined
export function loadSsh(): Promise<typeof import('node-ssh')> {
  return (nodeSsh ??= import('node-ssh'))
}

/** ssh2's key parser alone (what ssh2.utils.parseKey is): reading a key file needs no SSH client. */
function parseKey(text: string): ReturnType<typeof ssh2.utils.parseKey> {
  const parser = createRequire(import.meta.url)('ssh2/lib/protocol/keyParser.js') as {parseKey: typeof ssh2.utils.parseKey}
  return parser.parseKey(text)
}

const PRELUDE = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; LANG=C; export PATH LC_ALL LANG; '

/**
 * Scripts at least this long reach the shell on its stdin, not on the command line (when they have no stdin of their
 * own). sudo logs every command line it runs to the journal, in pieces of about 1 KB: the facts script of a
 * full-stack host (77 KB) made about 80 journal entries a run and cost journald about 20 ms of CPU; sshd, the login
 * shell and sudo each copied it too. Shorter commands stay on the command line, where the log shows them whole.
 */
export const STDIN_SCRIPT_BYTES = 4096

/** The first line of a command run with `client` (commandFor): the connection's SSH_CONNECTION. */
const CLIENT_LINE = '@@client '
/** The shell that prints that line: the connection's SSH_CONNECTION, which the command line passed in as $1. */
const PRINT_CLIENT = `printf '${CLIENT_LINE}%s\\n' "$1";`

/**
 * Takes the line commandFor's `client` put first off a command's output: the address the connection comes from
 * (SSH_CONNECTION's first word; null when it is empty) and the command's own output. undefined: no such line.
 */
export function splitClientLine(stdout: string): {client: string | null; stdout: string} | undefined {
  if (!stdout.startsWith(CLIENT_LINE)) return undefined
  const end = stdout.indexOf('\n')
  const line = end < 0 ? stdout : stdout.slice(0, end)
  return {client: line.slice(CLIENT_LINE.length).trim().split(' ')[0] || null, stdout: end < 0 ? '' : stdout.slice(end + 1)}
}

/**
 * Runner.hold's `then`, put in holdScript's THEN_SLOT: reads the script's `bytes` from stdin (the rest of stdin keeps
 * the lock), runs it in a subshell (stdin /dev/null, without the lock's descriptor, so that nothing it starts keeps
 * the lock) without positional parameters, then prints its exit status on a line `end` starts (after a newline of
 * its own). `client`: the connection's address first, as commandFor's `client` prints it.
 */
export function thenFragment(bytes: number, end: string, client: boolean): string {
  return [
    ...(client ? [PRINT_CLIENT] : []),
    `fb_then=$(head -c ${bytes}; echo x); (set --; eval "\${fb_then%x}") </dev/null 9>&-; printf '\\n${end}%s\\n' "$?";`,
  ].join(' ')
}

/**
 * What a `then` printed, from the output after the hold's first line: its exit status and output (the client line
 * taken off when `client`), once its end line has arrived; undefined until then.
 */
export function readThen(rest: string, end: string, client: boolean): {code: number; stdout: string; client?: string | null} | undefined {
  const at = rest.indexOf(`\n${end}`)
  const eol = at < 0 ? -1 : rest.indexOf('\n', at + 1)
  if (eol < 0) return undefined
  const said = Number(rest.slice(at + 1 + end.length, eol))
  const code = Number.isFinite(said) ? said : -1
  const stdout = rest.slice(0, at)
  const split = client ? splitClientLine(stdout) : undefined
  return split ? {code, stdout: split.stdout, client: split.client} : {code, stdout}
}

/**
 * The one place a command line is built: `sh -c` with the fixed environment, through `sudo -n` for root unless
 * logged in as root. A long script without stdin of its own goes on stdin: the command line then names it by its
 * first line (scripts carry no secret: those come on stdin) and the shell runs what it reads, to the last byte.
 */
export function commandFor(
  script: string,
  o: {root: boolean; user: string; stdin?: string | import('node:stream').Readable; client?: boolean},
): {command: string; stdin?: string | import('node:stream').Readable} {
  const long = o.stdin === undefined && Buffer.byteLength(script) >= STDIN_SCRIPT_BYTES
  const label = script.split('\n', 1)[0]!.slice(0, 60)
  const body = long ? `: ${shq(label)}; fb_script=$(cat; echo x); eval "\${fb_script%x}"` : script
  // `client`: the login shell expands SSH_CONNECTION into the script's $1 (sudo's env_reset would drop the variable
  // itself); the script prints it first, then runs with no positional parameters.
  const client = o.client ? `${PRINT_CLIENT} set --; ` : ''
  const inner = `/bin/sh -c ${shq(PRELUDE + client + body)}${o.client ? ' fb "$SSH_CONNECTION"' : ''}`
  return {command: o.root && o.user !== 'root' ? `sudo -n -- ${inner}` : inner, stdin: long ? script : o.stdin}
}

export class HostKeyError extends UserError {
  constructor(host: string, verdict: HostKeyVerdict, blob: Buffer, knownHostsFile: string) {
    const fp = fingerprint(blob)
    if (verdict.status === 'changed') {
      super(
        `${host}: HOST KEY CHANGED: the ${keyTypeOf(blob)} key presented is ${fp}, which does not match ${verdict.sources.join(', ')}. Refusing to connect (possible man-in-the-middle).`,
        [],
        [
          'If the host was really reinstalled, remove its old line from known_hosts (ssh-keygen -R HOST) and verify the new fingerprint out of band.',
        ],
      )
    } else if (verdict.status === 'revoked') {
      super(`${host}: the host key ${fp} is marked @revoked in ${verdict.source}. Refusing to connect.`)
    } else {
      super(
        `${host}: unknown host key ${keyTypeOf(blob)} ${fp}. Refusing to connect to an unverified host; check the fingerprint, then add it to known_hosts or pass --accept-new-host-keys.`,
        [],
        [
          `Check the fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then either add it to ${knownHostsFile}`,
          'or run again with --accept-new-host-keys to record it (trust on first use).',
        ],
      )
    }
    this.name = 'HostKeyError'
  }
}

/** A private key is a few KiB; anything near this is not one. */
const MAX_KEY_BYTES = 64 * 1024
/** ProxyJump chains that name further jump hosts in their own ssh_config stop here (a loop would not end). */
const MAX_HOPS = 8

/** One SSH connection to make: a jump host or the host itself. */
export interface Hop {
  /** How messages name it: `web1` for the host, `web1: jump host bastion` for a jump host. */
  label: string
  hostName: string
  port: number
  user: string
  identityFile?: string
  /** The field (or ssh_config keyword) the identity file came from, for messages. */
  identityField: string
  /** The names its key is looked up under in known_hosts (the first is the one recorded on first use). */
  names: string[]
}

export interface Route {
  /** Jump hosts in the order they are connected through (empty: a direct connection). */
  jumps: Hop[]
  target: Hop
  warnings: string[]
}

function firstExisting(files: string[] | undefined): string | undefined {
  return files?.find((f) => existsSync(f))
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]`, hosts in brackets for IPv6. */
function parseHop(spec: string, hostName: string): {user?: string; host: string; port?: number} {
  const m = /^(?:ssh:\/\/)?(?:([^@/\s]+)@)?(\[[^\]\s]+\]|[^:@/\s]+)(?::(\d{1,5}))?\/?$/.exec(spec.trim())
  if (!m) throw new UserError(`${hostName}: cannot read jump host ${JSON.stringify(spec)} (expected [user@]host[:port])`)
  return {user: m[1], host: m[2]!.replace(/^\[(.*)\]$/, '$1'), port: m[3] ? Number(m[3]) : undefined}
}

/**
 * Where and how a host is reached: the inventory's ssh settings, filled in by ssh_config as `ssh -G` resolves it
 * for the host's name (see resolveSshConfig).
 *
 * Precedence, per setting:
 * - address: ssh_config's HostName for the host's name, else the inventory's `address`. The one exception to
 *   "the inventory wins": `address` is required and is the host's identity (rendered configs, firewall rules,
 *   certificates), while HostName only says how this machine reaches it (a NAT, a tunnel, an SSH alias);
 * - user, port: the inventory's value when one is written (host > role > top level; `user: root` and `port: 22`
 *   included), else ssh_config's User/Port for the host's name, else foobar's default (root, 22);
 * - identity file: the inventory's `identity_file`, else the first of ssh_config's IdentityFile that exists, else
 *   none (ssh-agent);
 * - jump hosts: the inventory's `jump_host`, else ssh_config's ProxyJump; a comma-separated chain is followed hop
 *   by hop, each hop resolved through ssh_config like `ssh -J` does (its HostName, Port, User, IdentityFile, and
 *   for the first hop its own ProxyJump), explicit `user@` and `:port` in the chain winning.
 */
export function resolveRoute(host: Host, options: ConnectOptions = {}): Route {
  const file = options.sshConfigFile
  const cfg: SshConfigEntry = resolveSshConfig(host.name, file)
  const warnings = [...(cfg.unsupported ?? [])]
  const hostName = cfg.hostName ?? host.address
  const port = host.ssh.port ?? cfg.port ?? DEFAULT_PORT
  const user = host.ssh.user ?? cfg.user ?? DEFAULT_USER
  const configIdentity = firstExisting(cfg.identityFile)
  const identityFile = host.ssh.identityFile ?? configIdentity
  const identityField = host.ssh.identityFile
    ? `ssh.identity_file (host ${host.name})`
    : `IdentityFile in the ssh configuration (host ${host.name})`
  const target: Hop = {
    label: host.name,
    hostName,
    port,
    user,
    identityFile,
    identityField,
    names: [...new Set([hostName, host.name].map((n) => lookupName(n, port)))],
  }

  const jumps: Hop[] = []
  const expand = (spec: string, depth: number): void => {
    const specs = spec.split(',').filter((x) => x.trim() !== '')
    for (const [i, one] of specs.entries()) {
      if (jumps.length >= MAX_HOPS) throw new UserError(`${host.name}: more than ${MAX_HOPS} jump hosts (a ProxyJump loop in ssh_config?)`)
      const p = parseHop(one, host.name)
      const hc = resolveSshConfig(p.host, file)
      // The first hop's own ProxyJump comes before it (as ssh -J does it).
      if (i === 0 && hc.proxyJump && depth < MAX_HOPS) expand(hc.proxyJump, depth + 1)
      warnings.push(...(hc.unsupported ?? []))
      const hn = hc.hostName ?? p.host
      const hp = p.port ?? hc.port ?? DEFAULT_PORT
      const hopIdentity = firstExisting(hc.identityFile)
      jumps.push({
        label: `${host.name}: jump host ${p.host}`,
        hostName: hn,
        port: hp,
        user: p.user ?? hc.user ?? user,
        identityFile: hopIdentity ?? identityFile,
        identityField: hopIdentity ? `IdentityFile in the ssh configuration (jump host ${p.host})` : identityField,
        names: [...new Set([hn, p.host].map((n) => lookupName(n, hp)))],
      })
    }
  }
  const jumpSpec = host.ssh.jumpHost ?? cfg.proxyJump
  if (jumpSpec) expand(jumpSpec, 0)
  return {jumps, target, warnings}
}

/** The known_hosts files a connection to `host` reads, each with the field that names it: the inventory's, then the user's. */
function knownHostsFiles(host: Host): Array<{file: string; field: string}> {
  const own = host.ssh.knownHosts
  return [
    ...(own ? [{file: own, field: `ssh.known_hosts (host ${host.name})`}] : []),
    {file: resolve(homedir(), '.ssh', 'known_hosts'), field: '~/.ssh/known_hosts'},
  ]
}

/** Every entry of these known_hosts files (a missing file has none); a FIFO or a device is a LocalFileError, not a hang. */
function readKnownHosts(files: Array<{file: string; field: string}>) {
  return files.flatMap(({file, field}) => {
    const got = readLocalFile(file, field, {missingOk: true})
    return got ? parseKnownHosts(got.text, file) : []
  })
}

/**
 * A hop's private key, read the way every connection reads it: a regular file of at most 64 KiB holding a usable
 * unencrypted key (a LocalFileError otherwise: exit 2, the field and path named), and the warning when others than
 * its owner can read it.
 */
function readIdentity(hop: Hop & {identityFile: string}): {key: string; warning?: string} {
  const file = readLocalFile(hop.identityFile, hop.identityField, {maxBytes: MAX_KEY_BYTES})
  const parsed = parseKey(file.text)
  if (parsed instanceof Error)
    throw new LocalFileError(hop.identityField, hop.identityFile, `is not a usable SSH private key (${parsed.message})`, [
      'Point it at an unencrypted private key (or leave it out and use ssh-agent).',
    ])
  return {key: file.text, warning: readableByOthers(hop.identityField, hop.identityFile, file.mode)}
}

/** One local read a connection makes: `key` names what is read (the same file for several hosts is read once). */
export interface LocalRead {
  key: string
  /** Reads and checks it, as connecting would; returns warnings, throws a UserError (exit 2) on a problem. */
  check: () => string[]
}

/** Every host's ssh_config asked at once, without blocking (connectionReads and resolveRoute then find it). */
export async function loadRoutes(hosts: Host[], options: ConnectOptions = {}): Promise<void> {
  await loadSshConfigs(
    hosts.map((h) => h.name),
    options.sshConfigFile,
  )
}

/**
 * What connecting to `host` reads on this machine, to be checked before any host is contacted (a bad local file is
 * bad input, exit 2, not a failed host): ssh_config as resolved for it (its warnings), every hop's identity file,
 * the known_hosts files. Throws what resolving the route throws (ssh_config that `ssh -G` refuses, a bad jump host).
 */
export function connectionReads(host: Host, options: ConnectOptions = {}): LocalRead[] {
  const route = resolveRoute(host, options)
  const reads: LocalRead[] = [{key: `ssh_config ${host.name}`, check: () => route.warnings}]
  for (const hop of [...route.jumps, route.target]) {
    const identityFile = hop.identityFile
    if (identityFile === undefined) continue
    reads.push({
      key: `identity ${identityFile}`,
      check: () => {
        const {warning} = readIdentity({...hop, identityFile})
        return warning ? [warning] : []
      },
    })
  }
  for (const f of knownHostsFiles(host)) reads.push({key: `known_hosts ${f.file}`, check: () => (readKnownHosts([f]), [])})
  return reads
}

/** SSH as the transport: every runner is a fresh Connection. */
export function sshTransport(options: ConnectOptions = {}): Transport {
  return {open: (host) => Connection.open(host, options)}
}

/** One SSH connection per host, reused for every step; commands run through `sh -c` with a fixed PATH. */
export class Connection implements Runner {
  private channelsOpen = 0
  private readonly queue: Array<() => void> = []
  /** The address the host sees this connection come from, once known (null: SSH_CONNECTION was empty). */
  private client: string | null | undefined

  private constructor(
    readonly host: Host,
    /** Who it logged in as (inventory > ssh_config > root): commands go through `sudo -n` unless root. */
    readonly user: string,
    private readonly ssh: NodeSSH,
    /** The jump hosts' connections, first hop first. */
    private readonly jumps: NodeSSH[] = [],
    /** For the caller to show (stderr, the JSON envelope): a private key others can read, ssh_config it ignored. */
    readonly warnings: readonly string[] = [],
    private readonly local?: string,
  ) {}

  static async open(host: Host, options: ConnectOptions = {}): Promise<Connection> {
    await loadSshConfig(host.name, options.sshConfigFile)
    const route = resolveRoute(host, options)
    const warnings = [...route.warnings]
    const knownFiles = knownHostsFiles(host)
    const recordFile = knownFiles[0]!.file
    // Every known_hosts file is checked before connecting (type, size): a FIFO or a device is a clear error, not a hang.
    const knownEntries = () => readKnownHosts(knownFiles)
    knownEntries()

    let refusal: Error | undefined
    /** The same check for every hop, the jump hosts included: known_hosts, trust on first use, a changed key refused. */
    const verifierFor =
      (hop: Hop) =>
      (blob: Buffer): boolean => {
        try {
          const verdict = checkHostKey(knownEntries(), hop.names, blob)
          if (verdict.status === 'trusted') return true
          if (verdict.status === 'unknown' && options.acceptNewHostKeys) {
            mkdirSync(dirname(recordFile), {recursive: true, mode: 0o700})
            appendFileSync(recordFile, `${knownHostsLine(hop.names[0]!, blob)}\n`, {mode: 0o600})
            return true
          }
          refusal = new HostKeyError(hop.label, verdict, blob, recordFile)
        } catch (error) {
          refusal = error instanceof Error ? error : new Error(String(error))
        }
        return false
      }

    const keys = new Map<string, string>()
    const keyOf = (hop: Hop): string | undefined => {
      const identityFile = hop.identityFile
      if (!identityFile) return undefined
      let key = keys.get(identityFile)
      if (key === undefined) {
        const read = readIdentity({...hop, identityFile})
        if (read.warning) warnings.push(read.warning)
        key = read.key
        keys.set(identityFile, key)
      }
      return key
    }
    const configOf = (hop: Hop): Config => {
      const key = keyOf(hop)
      return {
        username: hop.user,
        readyTimeout: host.ssh.connectTimeout * 1000,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        agent: process.env.SSH_AUTH_SOCK,
        hostVerifier: verifierFor(hop),
        ...(key !== undefined ? {privateKey: key} : {}),
      }
    }
    const hops = [...route.jumps, route.target]
    // Keys are read (and refused) before any connection is made.
    for (const hop of hops) keyOf(hop)

    const {NodeSSH} = await loadSsh()
    const clients: NodeSSH[] = []
    let current = route.target
    const opened = Date.now()
    try {
      let sock: NodeJS.ReadWriteStream | undefined
      for (const [i, hop] of hops.entries()) {
        current = hop
        const client = new NodeSSH()
        clients.push(client)
        await client.connect(sock ? {...configOf(hop), sock: sock as never} : {...configOf(hop), host: hop.hostName, port: hop.port})
        const next = hops[i + 1]
        if (next) {
          current = next
          sock = await new Promise<NodeJS.ReadWriteStream>((res, rej) =>
            client.connection!.forwardOut('127.0.0.1', 0, next.hostName, next.port, (err, stream) => (err ? rej(err) : res(stream))),
          )
        }
      }
    } catch (error) {
      for (const c of clients.reverse()) c.dispose()
      if (refusal) throw refusal
      const msg = error instanceof Error ? error.message : String(error)
      const via = current === route.target ? '' : ` (${current.label.replace(`${host.name}: `, '')})`
      throw new RemoteError(
        host.name,
        'ssh connect',
        null,
        msg,
        `${host.name}: cannot connect to ${current.user}@${current.hostName}:${current.port}${via}: ${msg}`,
      )
    }
    trace(host.name, Date.now() - opened, 'ssh connect')
    const ssh = clients.pop()!
    // Commands share the connection (checks run in parallel, MAX_CHANNELS at a time); each adds listeners.
    ssh.connection?.setMaxListeners(64)
    // Small request/answer packets: without TCP_NODELAY, Nagle's algorithm and delayed ACKs cost ~40 ms a command.
    ssh.connection?.setNoDelay(true)
    // ssh2 keeps the TCP socket it opened (not public API; a jump host's hop has none): read defensively.
    const local =
      route.jumps.length === 0 ? (ssh.connection as unknown as {_sock?: {localAddress?: unknown}} | null)?._sock?.localAddress : undefined
    return new Connection(host, route.target.user, ssh, clients, warnings, typeof local === 'string' && local ? local : undefined)
  }

  /** Runs a shell snippet. Values inside it must already be quoted with shq(). */
  async run(script: string, options: RunOptions = {}): Promise<RunResult> {
    const started = Date.now()
    const result = await this.exec(script, {
      root: options.root ?? true,
      stdin: options.stdin,
      timeoutMs: options.timeoutMs,
      client: options.learnClient,
    })
    trace(this.host.name, Date.now() - started, script)
    if ((options.check ?? true) && result.code !== 0) {
      throw new RemoteError(this.host.name, shownCommand(script), result.code, result.stderr || result.stdout)
    }
    return result
  }

  /**
   * Streams `from` on this host into `to` on another host through the control machine (e.g. a database dump):
   * nothing is written to disk on either side.
   */
  async pipe(from: string, target: Runner, to: string): Promise<{dump: RunResult; load: RunResult}> {
    // A dump takes as long as the data is big: no time limit (a dead connection still ends it, by keepalive).
    if (!(target instanceof Connection)) {
      const dump = await this.exec(from, {root: true, timeoutMs: 0})
      return {dump, load: await target.run(to, {stdin: dump.stdout, check: false, timeoutMs: 0})}
    }
    const {PassThrough} = await import('node:stream')
    const stream = new PassThrough()
    const load = target.exec(to, {root: true, stdin: stream, timeoutMs: 0})
    const dump = this.exec(from, {root: true, timeoutMs: 0, onStdout: (chunk) => stream.write(chunk)}).finally(() => stream.end())
    return {dump: await dump, load: await load}
  }

  /** Runs a script over a channel of its own (commandFor builds its command line). */
  private async exec(
    script: string,
    o: {
      root: boolean
      stdin?: string | import('node:stream').Readable
      onStdout?: (chunk: Buffer) => void
      timeoutMs?: number
      /** Learn the client address from this command (not with onStdout): see RunOptions.learnClient. */
      client?: boolean
    },
  ): Promise<RunResult> {
    const client = Boolean(o.client && !o.onStdout)
    const {command, stdin} = commandFor(script, {root: o.root, user: this.user, stdin: o.stdin, client})
    const timeoutMs = o.timeoutMs ?? COMMAND_TIMEOUT_MS
    await this.channel()
    try {
      for (let attempt = 1; ; attempt++) {
        let channel: {close: () => unknown; signal?: (name: string) => unknown} | undefined
        let expire: (() => void) | undefined
        const expired = new Promise<'expired'>((resolve) => (expire = () => resolve('expired')))
        const timer = timeoutMs > 0 ? setTimeout(() => expire?.(), timeoutMs) : undefined
        try {
          const running = this.ssh.execCommand(command, {
            stdin,
            onStdout: o.onStdout,
            noTrim: true,
            onChannel: (c) => (channel = c),
          })
          const res = await Promise.race([running, expired])
          if (res === 'expired') {
            // Ask the host to end it, and stop waiting either way: a child that keeps its output open would keep
            // the channel (and foobar) waiting.
            try {
              channel?.signal?.('KILL')
              channel?.close()
            } catch {
              // the channel is already gone
            }
            running.catch(() => undefined)
            const said = `timed out after ${timeoutMs / 1000} s (foobar stopped waiting; the command may still be running on ${this.host.name})`
            return {code: TIMED_OUT, stdout: '', stderr: `${said}\n`}
          }
          const learned = client ? splitClientLine(res.stdout) : undefined
          if (learned) this.client = learned.client
          return {code: res.code ?? -1, stdout: o.onStdout ? '' : (learned?.stdout ?? res.stdout), stderr: res.stderr}
        } catch (error) {
          // sshd frees a finished session's slot a moment after the client sees it close: a channel opened right
          // then is refused. Nothing ran, so it is safe to open it again.
          if (attempt >= 8 || !/Channel open failure/i.test(String(error))) throw error
          const wait = 5 * 2 ** (attempt - 1)
          trace(this.host.name, wait, `channel refused (sshd's MaxSessions), try ${attempt + 1} after the wait: ${script}`)
          await new Promise((r) => setTimeout(r, wait))
        } finally {
          clearTimeout(timer)
        }
      }
    } finally {
      // A waiting command takes the slot over directly, so a newcomer cannot slip in between.
      const next = this.queue.shift()
      if (next) next()
      else this.channelsOpen--
    }
  }

  /** Waits for one of the MAX_CHANNELS slots (first come, first served). */
  private async channel(): Promise<void> {
    if (this.channelsOpen < MAX_CHANNELS) this.channelsOpen++
    else await new Promise<void>((resolve) => this.queue.push(resolve))
  }

  async readFile(path: string): Promise<string | undefined> {
    const r = await this.run(`cat ${shq(path)}`, {check: false})
    return r.code === 0 ? r.stdout : undefined
  }

  /** This end's address of a direct connection (the host sees another behind NAT): see Runner.localAddress. */
  localAddress(): string | undefined {
    return this.local
  }

  /**
   * The address this connection comes from, as the host sees it (SSH_CONNECTION; sudo would drop it): asked once a
   * connection, or learned by a command run with `learnClient`.
   */
  async clientAddress(): Promise<string | undefined> {
    if (this.client === undefined) {
      const r = await this.run('echo "$SSH_CONNECTION"', {root: false, check: false})
      this.client = r.stdout.trim().split(' ')[0] || null
    }
    return this.client ?? undefined
  }

  async hold(script: string, then?: {script: string; learnClient?: boolean}): Promise<Held> {
    const started = Date.now()
    const client = Boolean(then?.learnClient)
    // Its own nonce: the end line cannot be part of what the script prints.
    const end = `@@then-end-${randomBytes(6).toString('hex')} `
    // A function, not a string: a replacement string would read `$'` and the like as patterns.
    const body = then ? script.replace(THEN_SLOT, () => thenFragment(Buffer.byteLength(then.script), end, client)) : script
    if (then && body === script) throw new Error('hold: the script has no place for `then` (util/lock.ts THEN_SLOT)')
    const inner = `/bin/sh -c ${shq(PRELUDE + body)}${client ? ' fb "$SSH_CONNECTION"' : ''}`
    const command = this.user !== 'root' ? `sudo -n -- ${inner}` : inner
    const connection = this.ssh.connection
    if (!connection) throw new Error(`${this.host.name}: not connected`)
    return new Promise((resolve, reject) => {
      connection.exec(command, (error, stream) => {
        if (error) return reject(error)
        let out = ''
        let err = ''
        let settled = false
        const release = () => stream.end()
        const settle = (held: Held) => {
          settled = true
          if (then) trace(this.host.name, Date.now() - started, `(lock taken: ${held.line === 'locked' ? 'yes' : 'no'}) ${then.script}`)
          resolve(held)
        }
        if (then) stream.write(then.script)
        stream.on('data', (d: Buffer) => {
          out += d.toString()
          if (settled) return
          const nl = out.indexOf('\n')
          if (nl < 0) return
          const line = out.slice(0, nl)
          if (!then || line !== 'locked') return settle({line, release})
          const done = readThen(out.slice(nl + 1), end, client)
          if (!done) return
          if (done.client !== undefined) this.client = done.client
          settle({line, release, then: {code: done.code, stdout: done.stdout, stderr: err}})
        })
        stream.stderr.on('data', (d: Buffer) => {
          if (!settled && err.length < 65536) err += d.toString()
        })
        stream.on('close', (code: number | null) => {
          // Ended before it said what `then` did (the connection dropped): whatever it said, no lock is held.
          if (!settled) settle({line: then && out.startsWith('locked\n') ? '' : out.trim(), code: code ?? -1, release})
        })
      })
    })
  }

  close(): void {
    this.ssh.dispose()
    for (const j of [...this.jumps].reverse()) j.dispose()
  }
}
