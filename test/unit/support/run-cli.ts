import {spawn} from 'node:child_process'
import {join, resolve} from 'node:path'

export const ROOT = resolve(import.meta.dirname, '..', '..', '..')
export const BIN = join(ROOT, 'bin', 'run.js')

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the built CLI (`node bin/run.js`, dist/ as `npm run build` writes it) from the repository, no inventory set. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((done, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: ROOT,
      env: {...process.env, FOOBAR_INVENTORY: '', ...env},
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => done({code, stdout, stderr}))
  })
}
