/**
 * Installable (issue 21, item 4): `npm pack` of the built checkout, installed with `npm install -g` into a scratch
 * prefix, gives a `foobar` on PATH that works from any directory (templates and the lab inventory found inside the
 * package), and the tarball carries no private key or local state.
 */
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {ROOT} from './support/run-cli.js'

const scratch = mkdtempSync(join(tmpdir(), 'foobar-install-'))
afterAll(() => rmSync(scratch, {recursive: true, force: true, maxRetries: 5}))

describe('npm pack + npm install -g', () => {
  // dist/ is already built (npm test builds first): --ignore-scripts, so packing does not rebuild it under the other tests.
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], {cwd: ROOT, encoding: 'utf8'}),
  ) as Array<{filename: string; files: Array<{path: string}>}>
  const files = packed[0]!.files.map((f) => f.path)

  test('the tarball: the CLI, its manifest, templates and example inventories; no key, no local state, no tests', () => {
    for (const f of [
      'bin/run.js',
      'oclif.manifest.json',
      'dist/app/commands/provision.js',
      'templates/nginx/site.conf.hbs',
      'inventories/lab.yml',
    ])
      expect(files).toContain(f)
    expect(files.filter((f) => /\.key$|\/\.foobar\/|^test\/|^src\//.test(f))).toEqual([])
  })

  test(
    'foobar on PATH works from another directory: --version, render with the packaged templates, lab status, a typo',
    {timeout: 180_000},
    () => {
      const prefix = join(scratch, 'prefix')
      execFileSync(
        'npm',
        ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(scratch, packed[0]!.filename)],
        {
          encoding: 'utf8',
          stdio: 'pipe',
        },
      )
      const elsewhere = mkdtempSync(join(scratch, 'cwd-'))
      const env = {...process.env, PATH: `${join(prefix, 'bin')}:${process.env.PATH}`, FOOBAR_INVENTORY: ''}
      const foobar = (...args: string[]) => spawnSync('foobar', args, {cwd: elsewhere, env, encoding: 'utf8'})
      const version = foobar('--version')
      expect(version.status, version.stderr).toBe(0)
      expect(version.stdout).toMatch(/^foobar\/\d+\.\d+\.\d+ /)
      const render = foobar('render', '-i', join(ROOT, 'inventories', 'lab.yml'), '--out', join(elsewhere, 'out'), '--json')
      expect(render.status, render.stderr).toBe(0)
      expect(JSON.parse(render.stdout).result.files.length).toBeGreaterThan(50)
      const lab = foobar('lab', 'status', '--json')
      // Not root: the lab refuses with its own message (exit 2); root: the lab's state, up or down.
      if (process.getuid?.() === 0) expect(lab.status, lab.stderr).toBe(0)
      else expect(lab.stdout + lab.stderr).toMatch(/root/)
      expect(foobar('provison').status).toBe(127)
    },
  )
})
