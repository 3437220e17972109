import {appendFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import {homedir} from 'node:os'
import {dirname, resolve} from 'node:path'
import {NodeSSH, type Config} from 'node-ssh'
import {RemoteError, UserError} from '../util/errors.js'
import type {Host} from '../inventory/index.js'
import {shq} from '../util/shell.js'
import {type HostKeyVerdict, checkHostKey, fingerprint, keyTypeOf, knownHostsLine, lookupName, parseKnownHosts} from './known-hosts.js'
import type {RunOptions, RunResult, Runner, Transport} from './runner.js'
import {readSshConfig} from './ssh-config.js'

export type {RunOptions, RunResult, Runner, Transport} from './runner.js'

export interface ConnectOptions {
  /** Trust on first use: record an unknown host's key (a changed key is still refused). */
  acceptNewHostKeys?: boolean
  /** Override ~/.ssh/config (tests). */
  sshConfigFile?: string
}

/**
 * Channels (commands) open at once on one connection. sshd refuses more than its MaxSessions, which foobar's
 * hardening sets to 2 by default (`hardening.max_sessions`, never below 2): further commands wait their turn.
 */
export const MAX_CHANNELS = 2

/** A fixed environment, so that remote commands never depend on the user's shell rc files or locale. */
const PRELUDE = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; LANG=C; export PATH LC_ALL LANG; '

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

/** SSH as the transport: every runner is a fresh Connection. */
export function sshTransport(options: ConnectOptions = {}): Transport {
  return {open: (host) => Connection.open(host, options)}
}

/** One SSH connection per host, reused for every step; commands run through `sh -c` with a fixed PATH. */
export class Connection implements Runner {
  private channelsOpen = 0
  private readonly queue: Array<() => void> = []

  private constructor(
    readonly host: Host,
    private readonly ssh: NodeSSH,
    private readonly jump?: NodeSSH,
  ) {}

  static async open(host: Host, options: ConnectOptions = {}): Promise<Connection> {
    const cfg = readSshConfig(host.name, options.sshConfigFile)
    const address = host.address
    const port = host.ssh.port ?? cfg.port ?? 22
    const knownHostsFiles = [host.ssh.knownHosts, resolve(homedir(), '.ssh', 'known_hosts')].filter((f): f is string => !!f)
    const recordFile = host.ssh.knownHosts ?? resolve(homedir(), '.ssh', 'known_hosts')
    const names = [...new Set([lookupName(address, port), lookupName(host.name, port)])]
    let refusal: HostKeyError | undefined
    const hostVerifier = (blob: Buffer): boolean => {
      const entries = knownHostsFiles.flatMap((f) => (existsSync(f) ? parseKnownHosts(readFileSync(f, 'utf8'), f) : []))
      const verdict = checkHostKey(entries, names, blob)
      if (verdict.status === 'trusted') return true
      if (verdict.status === 'unknown' && options.acceptNewHostKeys) {
        mkdirSync(dirname(recordFile), {recursive: true, mode: 0o700})
        appendFileSync(recordFile, `${knownHostsLine(lookupName(address, port), blob)}\n`, {mode: 0o600})
        return true
      }
      refusal = new HostKeyError(host.name, verdict, blob, recordFile)
      return false
    }

    const identity = host.ssh.identityFile ?? cfg.identityFile?.find((f) => existsSync(f))
    const base: Config = {
      username: host.ssh.user,
      readyTimeout: host.ssh.connectTimeout * 1000,
      keepaliveInterval: 5000,
      keepaliveCountMax: 3,
      agent: process.env.SSH_AUTH_SOCK,
      hostVerifier,
    }
    if (identity) {
      if (!existsSync(identity))
        throw new UserError(`${host.name}: ssh identity file ${identity} does not exist`, [], ['Set ssh.identity_file in the inventory.'])
      base.privateKey = readFileSync(identity, 'utf8')
    }

    const ssh = new NodeSSH()
    let jump: NodeSSH | undefined
    try {
      const jumpSpec = host.ssh.jumpHost ?? cfg.proxyJump
      if (jumpSpec) {
        jump = new NodeSSH()
        const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(jumpSpec)
        if (!m) throw new UserError(`${host.name}: cannot read jump host ${JSON.stringify(jumpSpec)}`)
        await jump.connect({...base, host: m[2], port: Number(m[3] ?? 22), username: m[1] ?? host.ssh.user, hostVerifier: () => true})
        const sock = await new Promise<NodeJS.ReadWriteStream>((res, rej) =>
          jump!.connection!.forwardOut('127.0.0.1', 0, address, port, (err, stream) => (err ? rej(err) : res(stream))),
        )
        await ssh.connect({...base, sock: sock as never})
      } else {
        await ssh.connect({...base, host: address, port})
      }
    } catch (error) {
      jump?.dispose()
      if (refusal) throw refusal
      const msg = error instanceof Error ? error.message : String(error)
      throw new RemoteError(
        host.name,
        'ssh connect',
        null,
        msg,
        `${host.name}: cannot connect to ${host.ssh.user}@${address}:${port}: ${msg}`,
      )
    }
    // Commands share the connection (checks run in parallel, MAX_CHANNELS at a time); each adds listeners.
    ssh.connection?.setMaxListeners(64)
    // Small request/answer packets: without TCP_NODELAY, Nagle's algorithm and delayed ACKs cost ~40 ms a command.
    ssh.connection?.setNoDelay(true)
    return new Connection(host, ssh, jump)
  }

  /** Runs a shell snippet. Values inside it must already be quoted with shq(). */
  async run(script: string, options: RunOptions = {}): Promise<RunResult> {
    const result = await this.exec(script, {root: options.root ?? true, stdin: options.stdin})
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

  /**
   * Streams `from` on this host into `to` on another host through the control machine (e.g. a database dump):
   * nothing is written to disk on either side.
   */
  async pipe(from: string, target: Runner, to: string): Promise<{dump: RunResult; load: RunResult}> {
    if (!(target instanceof Connection)) {
      const dump = await this.exec(from, {root: true})
      return {dump, load: await target.run(to, {stdin: dump.stdout, check: false})}
    }
    const {PassThrough} = await import('node:stream')
    const stream = new PassThrough()
    const load = target.exec(to, {root: true, stdin: stream})
    const dump = this.exec(from, {root: true, onStdout: (chunk) => stream.write(chunk)}).finally(() => stream.end())
    return {dump: await dump, load: await load}
  }

  /** The one place a command line is built: `sh -c` with the fixed environment, through `sudo -n` when needed. */
  private async exec(
    script: string,
    o: {root: boolean; stdin?: string | import('node:stream').Readable; onStdout?: (chunk: Buffer) => void},
  ): Promise<RunResult> {
    const inner = `/bin/sh -c ${shq(PRELUDE + script)}`
    const command = o.root && this.host.ssh.user !== 'root' ? `sudo -n -- ${inner}` : inner
    await this.channel()
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const res = await this.ssh.execCommand(command, {stdin: o.stdin, onStdout: o.onStdout, noTrim: true})
          return {code: res.code ?? -1, stdout: o.onStdout ? '' : res.stdout, stderr: res.stderr}
        } catch (error) {
          // sshd frees a finished session's slot a moment after the client sees it close: a channel opened right
          // then is refused. Nothing ran, so it is safe to open it again.
          if (attempt >= 8 || !/Channel open failure/i.test(String(error))) throw error
          await new Promise((r) => setTimeout(r, 5 * 2 ** (attempt - 1)))
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

  /** The address this connection comes from, as the host sees it (SSH_CONNECTION; sudo would drop it). */
  async clientAddress(): Promise<string | undefined> {
    const r = await this.run('echo "$SSH_CONNECTION"', {root: false, check: false})
    return r.stdout.trim().split(' ')[0] || undefined
  }

  close(): void {
    this.ssh.dispose()
    this.jump?.dispose()
  }
}
