import {run, type RunResult} from './exec.js'
import type {LabPaths} from './paths.js'

export interface SshOptions {
  user?: string
  /** A known_hosts file to verify against; the lab's own by default. */
  knownHosts?: string
  timeoutMs?: number
  /** ssh's own LogLevel; ERROR by default. INFO also shows why a server closed the connection. */
  logLevel?: 'ERROR' | 'INFO'
}

/**
 * Arguments for the system `ssh` that verify the host key strictly against the lab's known_hosts and use only the
 * lab key: no user config, no agent, no prompt.
 */
export function sshArgs(paths: LabPaths, address: string, opts: SshOptions = {}): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    paths.sshKey,
    '-o',
    'IdentitiesOnly=yes',
    '-o',
    'IdentityAgent=none',
    '-o',
    'BatchMode=yes',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `UserKnownHostsFile=${opts.knownHosts ?? paths.knownHosts}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=5',
    '-o',
    `LogLevel=${opts.logLevel ?? 'ERROR'}`,
    `${opts.user ?? 'deploy'}@${address}`,
  ]
}

/** Run one command on a lab host; resolves with the exit code (255 = ssh itself failed). */
export function sshRun(paths: LabPaths, address: string, command: string, opts: SshOptions = {}): Promise<RunResult> {
  return run('ssh', [...sshArgs(paths, address, opts), command], {
    what: `ssh ${opts.user ?? 'deploy'}@${address}`,
    timeoutMs: opts.timeoutMs ?? 60_000,
    allowFailure: true,
  })
}
