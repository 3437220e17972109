/*
 * foobar's Lynis plugin in the shell Lynis runs in (dash, /bin/sh on Debian): sourced as Lynis sources it, its
 * functions must do what the ones it stands in for do — a log line with the last separator's stamp, and `expr N + 1`
 * as expr answers it, the real expr for anything else (issue 20: processes a Lynis run starts).
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {LYNIS_LOG_PLUGIN, lynisState} from '../../src/components/hardening/lynis.js'

const plugin = lynisState().files.find((f) => f.path === LYNIS_LOG_PLUGIN)!.content
const dir = mkdtempSync(join(tmpdir(), 'foobar-lynis-plugin-'))
writeFileSync(join(dir, 'plugin'), plugin)

/** `script` in dash after the plugin is sourced (as Lynis' `. ${PLUGINFILE}` does); stdout, stderr and status. */
function dash(script: string) {
  const r = spawnSync('/bin/sh', ['-c', `. ${join(dir, 'plugin')}\n${script}`], {encoding: 'utf8', env: {PATH: process.env.PATH}})
  return {stdout: r.stdout, stderr: r.stderr, status: r.status}
}

describe("foobar's Lynis plugin, in dash", () => {
  test('`expr N + 1` in backquotes, as the Debian plugin counts: the same numbers as expr, without an expr process', () => {
    // A PATH where expr is missing: the counting must not need it.
    const r = dash(
      'PATH=/nonexistent; N=0; for i in a b c d e f g h i j k; do N=`expr ${N} + 1`; done; echo "$N"; N=`expr 41 + 1`; echo "$N"',
    )
    expect(r).toMatchObject({stdout: '11\n42\n', status: 0})
  })

  test('any other use is the real expr: other operators, non-numbers, a failing expression keeps its status', () => {
    const real = (args: string) => spawnSync('/bin/sh', ['-c', `expr ${args}`], {encoding: 'utf8'})
    for (const args of ['3 \\* 4', '7 - 7', 'abc + 1', "'' + 1", '-3 + 1', '5 + 2', 'length hello', '123456789012 + 1']) {
      const theirs = real(args)
      const ours = dash(`expr ${args}`)
      expect({args, out: ours.stdout, status: ours.status}).toEqual({args, out: theirs.stdout, status: theirs.status})
    }
  })

  test('LogText appends the line with the stamp of the last separator, only when Lynis logs', () => {
    const log = join(dir, 'lynis.log')
    writeFileSync(log, '')
    dash(`LOGFILE=${log}; LOGTEXT=1; CDATE='2026-12-05 08:00:00'; LogText 'Result: one'; LOGTEXT=0; LogText 'not logged'`)
    expect(readFileSync(log, 'utf8')).toBe('2026-12-05 08:00:00 Result: one\n')
  })
})
