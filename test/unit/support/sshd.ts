/*
 * Throwaway OpenSSH servers on 127.0.0.1 for unit tests (the approach of hardening-sshd.test.ts): own host keys,
 * one authorized client key, root and `nobody` allowed in, TCP forwarding on (to act as a jump host). Needs sshd
 * and root (the privilege-separation directory); `sshdAvailable()` says why not, tests skip (fail under CI=true).
 */
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {accessSync, chmodSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {createConnection, createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export interface TestSshd {
  port: number
  /** The host key's public line (`ssh-ed25519 AAAA...`). */
  hostKey: string
  /** What sshd logged (-e). */
  log: () => string
  /**
   * What sshd logged from offset `from` on, once it matches `pattern` (or after 5 s, as it is then): sshd's lines
   * reach this process after the client's connection has returned (a test read the log too early on a loaded machine).
   */
  logged: (pattern: RegExp, from?: number) => Promise<string>
  stop: () => void
}

export function which(bin: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin']) {
    try {
      accessSync(join(dir, bin), constants.X_OK)
      return join(dir, bin)
    } catch {
      // not here
    }
  }
  return undefined
}

/** Undefined when sshd can run here, else the reason. */
export function sshdUnavailable(): string | undefined {
  const problems = [...['sshd', 'ssh', 'ssh-keygen'].filter((b) => !which(b)).map((b) => `${b} not installed`)]
  if (process.getuid?.() !== 0) problems.push('needs root')
  return problems.length ? `${problems.join('; ')} (apt-get install openssh-server openssh-client)` : undefined
}

export const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number}
      s.close(() => resolve(port))
    })
  })

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const c = createConnection({host: '127.0.0.1', port}, () => {
      c.destroy()
      resolve(true)
    })
    c.on('error', () => resolve(false))
  })

export interface SshdLab {
  dir: string
  /** The client's private key (authorized on every server), mode 0600. */
  clientKey: string
  start: (name: string) => Promise<TestSshd>
  cleanup: () => void
}

export function sshdLab(): SshdLab {
  const dir = mkdtempSync(join(tmpdir(), 'foobar-sshd-lab-'))
  // sshd reads authorized_keys as the user logging in (nobody too).
  chmodSync(dir, 0o755)
  const clientKey = join(dir, 'client_key')
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'foobar-test', '-f', clientKey])
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${clientKey}.pub`), {mode: 0o644})
  const servers: TestSshd[] = []
  return {
    dir,
    clientKey,
    async start(name) {
      mkdirSync('/run/sshd', {recursive: true, mode: 0o755})
      const hostKeyFile = join(dir, `host_${name}`)
      spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKeyFile])
      const port = await freePort()
      const config = join(dir, `sshd_${name}.conf`)
      writeFileSync(
        config,
        [
          `Port ${port}`,
          'ListenAddress 127.0.0.1',
          `HostKey ${hostKeyFile}`,
          `PidFile ${dir}/sshd_${name}.pid`,
          `AuthorizedKeysFile ${dir}/authorized_keys`,
          'StrictModes no',
          'UsePAM no',
          'PermitRootLogin prohibit-password',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'AllowUsers root nobody',
          'AllowTcpForwarding yes',
          'LogLevel VERBOSE',
          '',
        ].join('\n'),
      )
      const child: ChildProcess = spawn(which('sshd')!, ['-D', '-e', '-f', config], {stdio: ['ignore', 'ignore', 'pipe']})
      let log = ''
      child.stderr!.on('data', (d) => (log += d))
      for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 50))
      const pub = readFileSync(`${hostKeyFile}.pub`, 'utf8').trim().split(' ')
      const logged = async (pattern: RegExp, from = 0) => {
        for (let i = 0; i < 250 && !pattern.test(log.slice(from)); i++) await new Promise((r) => setTimeout(r, 20))
        return log.slice(from)
      }
      const server: TestSshd = {port, hostKey: `${pub[0]} ${pub[1]}`, log: () => log, logged, stop: () => child.kill()}
      servers.push(server)
      return server
    },
    cleanup() {
      for (const s of servers) s.stop()
      rmSync(dir, {recursive: true, force: true, maxRetries: 5})
    },
  }
}
