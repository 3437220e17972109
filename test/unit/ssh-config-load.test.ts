/*
 * How often foobar asks `ssh -G` (src/remote/ssh-config.ts): once a host, plus once a run for ssh's own defaults
 * (`-F /dev/null`), every host at once before connecting (loadRoutes), and never again for a host already asked.
 * A stand-in `ssh` on PATH answers as OpenSSH would and logs each call.
 */
import {chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import type {Host} from '../../src/inventory/index.js'
import {loadRoutes} from '../../src/remote/connection.js'
import {resolveSshConfig} from '../../src/remote/ssh-config.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-ssh-g-'))
const LOG = join(TMP, 'calls')
const CONFIG = join(TMP, 'ssh_config')
writeFileSync(CONFIG, '# read by the stand-in only through its arguments\n')
writeFileSync(LOG, '')
// ssh -G [-F FILE] -- NAME: the defaults for -F /dev/null; web* hosts get a HostName and a User from "the config".
writeFileSync(
  join(TMP, 'ssh'),
  `#!/bin/sh
echo "$PPID $(ps -o ppid= -p $PPID | tr -d ' ') $*" >> ${LOG}
for last; do :; done
case $last in bad*) echo "$last: line 3: Bad configuration option: frobnicate" >&2; exit 255 ;; esac
lower=$(printf '%s' "$last" | tr A-Z a-z)
if [ "$3" = /dev/null ]; then
  printf 'user root\\nhostname %s\\nport 22\\nidentityfile ~/.ssh/id_rsa\\nidentityfile ~/.ssh/id_ed25519\\nproxyjump none\\n' "$lower"
  exit 0
fi
case $last in
  web*) printf 'user deploy\\nhostname 10.0.0.%s\\nport 22\\nidentityfile ~/.ssh/id_rsa\\nidentityfile ~/.ssh/id_ed25519\\nproxyjump none\\n' "\${last#web}" ;;
  *) printf 'user root\\nhostname %s\\nport 22\\nidentityfile ~/.ssh/id_rsa\\nidentityfile ~/.ssh/id_ed25519\\nproxyjump none\\n' "$lower" ;;
esac
`,
)
chmodSync(join(TMP, 'ssh'), 0o755)
const PATH = process.env.PATH
process.env.PATH = `${TMP}:${PATH}`
afterAll(() => {
  process.env.PATH = PATH
  rmSync(TMP, {recursive: true, force: true, maxRetries: 5})
})

const calls = () => readFileSync(LOG, 'utf8').split('\n').filter(Boolean)
const host = (name: string) => ({name}) as Host

describe('ssh -G', () => {
  test('five hosts at once: one call each and one for the defaults; the answers are then known without a call', async () => {
    const names = ['web1', 'web2', 'web3', 'DB1', 'lb1']
    await loadRoutes(names.map(host), {sshConfigFile: CONFIG})
    expect(calls().filter((c) => c.includes('/dev/null'))).toHaveLength(1)
    expect(calls()).toHaveLength(6)
    // All six started by one child process (a shell, through its subshells), none spawned by foobar's own.
    const parents = new Set(calls().map((c) => Number(c.split(' ')[0])))
    const grandparents = new Set(calls().map((c) => Number(c.split(' ')[1])))
    expect(parents.has(process.pid)).toBe(false)
    expect(grandparents.size).toBe(1)
    expect(resolveSshConfig('web2', CONFIG)).toEqual({hostName: '10.0.0.2', user: 'deploy'})
    // No HostName of its own: ssh's default (the name, lower-cased) is not taken for one.
    expect(resolveSshConfig('DB1', CONFIG)).toEqual({})
    expect(resolveSshConfig('lb1', CONFIG)).toEqual({})
    expect(calls()).toHaveLength(6)
  })

  test('a host asked later, without blocking or not, is asked once more: the defaults are not', async () => {
    expect(resolveSshConfig('web7', CONFIG)).toEqual({hostName: '10.0.0.7', user: 'deploy'})
    await loadRoutes([host('web8'), host('web8')], {sshConfigFile: CONFIG})
    expect(resolveSshConfig('web8', CONFIG)).toEqual({hostName: '10.0.0.8', user: 'deploy'})
    expect(calls()).toHaveLength(8)
    expect(calls().filter((c) => c.includes('/dev/null'))).toHaveLength(1)
  })

  test('no temporary directory for the batch: nothing fails, each host is asked when it is resolved', async () => {
    const before = calls().length
    const tmp = process.env.TMPDIR
    process.env.TMPDIR = join(TMP, 'missing')
    try {
      await loadRoutes([host('web11')], {sshConfigFile: CONFIG})
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR
      else process.env.TMPDIR = tmp
    }
    expect(calls()).toHaveLength(before)
    expect(resolveSshConfig('web11', CONFIG)).toEqual({hostName: '10.0.0.11', user: 'deploy'})
    expect(calls()).toHaveLength(before + 1)
  })

  test('a configuration ssh refuses for one host: the others are known, that one is a clear error when resolved', async () => {
    const before = calls().length
    await loadRoutes([host('web9'), host('bad1')], {sshConfigFile: CONFIG})
    expect(calls()).toHaveLength(before + 2)
    expect(resolveSshConfig('web9', CONFIG)).toEqual({hostName: '10.0.0.9', user: 'deploy'})
    expect(() => resolveSshConfig('bad1', CONFIG)).toThrow(
      /ssh -G -F .* -- bad1` \(reading the ssh configuration\) failed: bad1: line 3: Bad configuration option/,
    )
  })
})
