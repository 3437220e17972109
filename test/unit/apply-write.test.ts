/*
 * writeFileScript and restoreScript run for real with /bin/sh against a temp directory, content on stdin as
 * provision sends it: atomic replace with the final mode, a backup of the previous version, and the two kinds of
 * validator failing (candidate: old file untouched; config: previous file put back, a new one removed).
 * Root only (chown to root:root, backups under /var/lib/foobar/backup); cleans up what it creates there.
 */
import {spawn, spawnSync} from 'node:child_process'
import {once} from 'node:events'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {afterAll, beforeEach, describe, expect, test} from 'vitest'
import type {DesiredFile} from '../../src/engine/contract.js'
import {
  BACKUP_DIR,
  WRITE_BATCH_BYTES,
  batchInput,
  restoreScript,
  writeBatches,
  writeFileScript,
  writeFilesScript,
  wroteCount,
} from '../../src/engine/apply.js'
import {commandFor} from '../../src/remote/connection.js'

const IS_ROOT = process.getuid?.() === 0
if (!IS_ROOT)
  console.warn(
    'apply-write.test.ts: not root, writeFileScript tests skipped (they chown to root:root and write under /var/lib/foobar/backup)',
  )
const TMP = mkdtempSync(join(tmpdir(), 'foobar-apply-'))
const BACKUP_ROOT = join(BACKUP_DIR, TMP)
// Directories above our backups that did not exist before: removed again if we leave them empty.
const created = ['/var/lib/foobar', BACKUP_DIR, ...ancestors(BACKUP_ROOT)].filter((d) => !existsSync(d))
afterAll(() => {
  rmSync(TMP, {recursive: true, force: true, maxRetries: 5})
  rmSync(BACKUP_ROOT, {recursive: true, force: true, maxRetries: 5})
  for (const d of [...new Set(created)].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(d)
    } catch {
      // not empty: left for the assertion that follows
    }
  }
})

function ancestors(p: string): string[] {
  const out: string[] = []
  for (let d = dirname(p); d !== '/' && d !== BACKUP_DIR; d = dirname(d)) out.push(d)
  return out
}

const run = (script: string, stdin = '') =>
  spawnSync('/bin/sh', ['-c', script], {input: stdin, encoding: 'utf8', env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C'}})
const mode = (p: string) => statSync(p).mode & 0o7777
const backupOf = (p: string) => `${BACKUP_DIR}${p}`

let n = 0
let path = ''
beforeEach(() => {
  path = join(TMP, `conf.d-${++n}`, 'site.conf')
})
const desired = (content: string, extra: Partial<DesiredFile> = {}): DesiredFile => ({
  path,
  content,
  mode: 0o640,
  owner: 'root',
  group: 'root',
  ...extra,
})
/** Runs the script for `f` with its content on stdin, as provision does. */
const write = (f: DesiredFile) => run(writeFileScript(f), f.content)
/** No temp file (`.<name>.foobar-<12 hex>`) left beside the target. */
const straysIn = (dir: string) => readdirSync(dir).filter((e) => /\.foobar-[0-9a-f]{12}$/.test(e))
const strays = () => straysIn(dirname(path))

describe.skipIf(!IS_ROOT)('writeFileScript (root)', () => {
  test('a new file: exactly the content (no newline added) and the mode; a new directory is world-readable', () => {
    const content = 'line 1\nno newline at the end ✓'
    const r = write(desired(content, {mode: 0o600}))
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe(content)
    expect(mode(path)).toBe(0o600)
    expect(statSync(path).uid).toBe(0)
    expect(mode(dirname(path))).toBe(0o755)
    expect(strays()).toEqual([])
  })

  test('replacing a file: new content and mode, the previous version kept as the backup', () => {
    const first = write(desired('version 1\n', {mode: 0o644}))
    expect(first.status, first.stderr).toBe(0)
    const r = write(desired('version 2\n'))
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe('version 2\n')
    expect(mode(path)).toBe(0o640)
    expect(readFileSync(backupOf(path), 'utf8')).toBe('version 1\n')
    expect(mode(backupOf(path))).toBe(0o644)
    expect(mode(dirname(backupOf(path))) & 0o077).toBe(0)
    expect(strays()).toEqual([])
  })

  test("a candidate validator that fails: the old file untouched, no temp file, the checker's output reported", () => {
    write(desired('good\n', {mode: 0o644}))
    const r = write(desired('bad\n', {validate: {mode: 'candidate', command: "sh -c 'echo checker says no; exit 1' {}"}}))
    expect(r.status).toBe(3)
    expect(r.stderr).toContain('checker says no')
    expect(r.stderr).toContain(`validation failed: ${path} (previous file kept)`)
    expect(readFileSync(path, 'utf8')).toBe('good\n')
    expect(mode(path)).toBe(0o644)
    expect(strays()).toEqual([])
  })

  test('a candidate validator sees the candidate content in {}', () => {
    const ok = write(desired('listen 443;\n', {validate: {mode: 'candidate', command: 'grep -q "^listen 443;$" {}'}}))
    expect(ok.status, ok.stderr).toBe(0)
    const bad = write(desired('listen 80;\n', {validate: {mode: 'candidate', command: 'grep -q "^listen 443;$" {}'}}))
    expect(bad.status).toBe(3)
    expect(readFileSync(path, 'utf8')).toBe('listen 443;\n')
  })

  test('a config validator that fails: the previous file restored', () => {
    write(desired('good\n', {mode: 0o644}))
    const check = `grep -q good ${path}`
    const r = write(desired('broken\n', {validate: {mode: 'config', command: check}}))
    expect(r.status).toBe(3)
    expect(r.stderr).toContain(`validation failed: ${path} (previous file restored)`)
    expect(readFileSync(path, 'utf8')).toBe('good\n')
    expect(mode(path)).toBe(0o644)
    expect(strays()).toEqual([])
  })

  test('a config validator that fails on a new file: the file removed again', () => {
    const r = write(desired('broken\n', {validate: {mode: 'config', command: 'false'}}))
    expect(r.status).toBe(3)
    expect(existsSync(path)).toBe(false)
    expect(strays()).toEqual([])
  })

  test('a config validator that passes runs with the new file in place', () => {
    const r = write(desired('new\n', {validate: {mode: 'config', command: `grep -q new ${path}`}}))
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(path, 'utf8')).toBe('new\n')
  })

  test('a stray temp file has the pattern strays() looks for; each write has a temp name of its own', () => {
    const f = desired('x\n')
    const temps = [writeFileScript(f), writeFileScript(f)].map((script) => /^cat > (\S+)$/m.exec(script)?.[1])
    for (const t of temps) expect(t?.split('/').pop()).toMatch(/^\.site\.conf\.foobar-[0-9a-f]{12}$/)
    expect(temps[0]).not.toBe(temps[1])
    expect(dirname(temps[0]!)).toBe(dirname(path))
  })

  test("owner and group as desired: another user's file, and root's in a setgid directory of another group", () => {
    // root:root files skip chown (a process less a file), except where a setgid directory would give them its group.
    mkdirSync(dirname(path), {recursive: true})
    chownSync(dirname(path), 0, 65534)
    chmodSync(dirname(path), 0o2755)
    const r = write(desired('in a setgid directory\n'))
    expect(r.status, r.stderr).toBe(0)
    expect([statSync(path).uid, statSync(path).gid]).toEqual([0, 0])
    const other = write(desired('nobody:nogroup\n', {owner: 'nobody', group: 'nogroup'}))
    expect(other.status, other.stderr).toBe(0)
    expect([statSync(path).uid, statSync(path).gid]).toEqual([65534, 65534])
    expect(mode(path)).toBe(0o640)
    // Back to root's: written again, the owner changes with the file (a new temp file, root's).
    expect(write(desired('root again\n')).status).toBe(0)
    expect([statSync(path).uid, statSync(path).gid]).toEqual([0, 0])
  })

  test('no fixed-name file in /tmp is written (a local user could plant a symlink there)', () => {
    const f = (validate: DesiredFile['validate']): DesiredFile => ({
      path: '/etc/nginx/conf.d/foobar.conf',
      content: '',
      mode: 0o644,
      owner: 'root',
      group: 'root',
      validate,
    })
    const script =
      writeFileScript(f({mode: 'candidate', command: 'nginx -t -c {}'})) + writeFileScript(f({mode: 'config', command: 'nginx -t'}))
    expect(script).not.toMatch(/\/tmp\b/)
  })

  test('restoreScript after a failed run: an updated file gets its previous version, a created one is removed', () => {
    write(desired('v1\n'))
    expect(write(desired('v2\n')).status).toBe(0)
    const updated = path
    path = join(TMP, `conf.d-${++n}`, 'new.conf')
    expect(write(desired('created\n')).status).toBe(0)
    const createdFile = path
    const r = run(restoreScript([updated, createdFile]))
    expect(r.status, r.stderr).toBe(0)
    expect(readFileSync(updated, 'utf8')).toBe('v1\n')
    expect(existsSync(createdFile)).toBe(false)
  })

  test('a file created in an earlier run and updated now is restored, not deleted', () => {
    write(desired('from an earlier run\n'))
    expect(write(desired('now\n')).status).toBe(0)
    run(restoreScript([path]))
    expect(readFileSync(path, 'utf8')).toBe('from an earlier run\n')
  })
})

describe.skipIf(!IS_ROOT)('writeFilesScript: several files in one round trip (root)', () => {
  const at = (name: string, content: string, extra: Partial<DesiredFile> = {}): DesiredFile => ({
    path: join(TMP, `batch-${n}`, name),
    content,
    mode: 0o640,
    owner: 'root',
    group: 'root',
    ...extra,
  })
  const writeAll = (files: DesiredFile[], stdin = batchInput(files)) => run(writeFilesScript(files), stdin)

  test('each file gets exactly its own bytes (multi-byte characters, no final newline, empty), its mode, and is reported', () => {
    const files = [at('a.conf', 'première ligne\n€ deux'), at('empty.conf', ''), at('c.conf', 'x'.repeat(70_000) + '\n', {mode: 0o600})]
    const r = writeAll(files)
    expect(r.status, r.stderr).toBe(0)
    for (const f of files) expect(readFileSync(f.path, 'utf8'), f.path).toBe(f.content)
    expect(mode(files[2]!.path)).toBe(0o600)
    expect(wroteCount(r.stdout)).toBe(3)
  })

  test('a file its checker rejects stops the batch: those before it are in place and reported, it and those after are not', () => {
    const files = [
      at('ok.conf', 'good\n'),
      at('bad.conf', 'bad\n', {validate: {mode: 'candidate', command: 'grep -q good {}'}}),
      at('after.conf', 'after\n'),
    ]
    const r = writeAll(files)
    expect(r.status).toBe(3)
    expect(r.stderr).toMatch(/validation failed: .*bad\.conf \(previous file kept\)/)
    expect(wroteCount(r.stdout)).toBe(1)
    expect(readFileSync(files[0]!.path, 'utf8')).toBe('good\n')
    expect(existsSync(files[1]!.path)).toBe(false)
    expect(existsSync(files[2]!.path)).toBe(false)
  })

  test('content cut short (a connection that dropped mid-stdin): the short file is not moved in place', () => {
    const files = [at('one.conf', 'one\n'), at('two.conf', 'v2 of two, long enough\n')]
    mkdirSync(dirname(files[1]!.path), {recursive: true})
    writeFileSync(files[1]!.path, 'v1\n')
    const input = batchInput(files)
    const r = writeAll(files, input.slice(0, input.indexOf(files[1]!.content) + 6))
    expect(r.status).toBe(4)
    expect(r.stderr).toMatch(/two\.conf: content cut short \(previous file kept\)/)
    expect(readFileSync(files[1]!.path, 'utf8')).toBe('v1\n')
    expect(straysIn(dirname(files[1]!.path))).toEqual([])
  })

  test('input that ends with a content but not what follows it, or that holds the end line inside a content', () => {
    const files = [at('one.conf', 'one\n'), at('two.conf', 'two: all of it, and nothing after\n')]
    const input = batchInput(files)
    // Every byte of two.conf's content arrived, the line after it did not: not trusted to be whole.
    const cut = writeAll(files, input.slice(0, input.indexOf(files[1]!.content) + files[1]!.content.length))
    expect(cut.status).toBe(4)
    expect(cut.stderr).toMatch(/two\.conf: content cut short \(previous file kept\)/)
    expect(existsSync(files[1]!.path)).toBe(false)
    expect(straysIn(dirname(files[1]!.path))).toEqual([])
    // A content is read by its length: the end line inside it is content, whatever it looks like.
    const tricky = [at('a.conf', `before\n${input.split('\n')[1]}\nafter\n`), at('b.conf', 'b\n')]
    const r = writeAll(tricky)
    expect(r.status, r.stderr).toBe(0)
    for (const f of tricky) expect(readFileSync(f.path, 'utf8'), f.path).toBe(f.content)
  })

  test('the connection dropped mid-content (stdin ends, stdout and stderr closed): no temp file left, the previous file kept', async () => {
    // What sshd does to the remote shell when foobar is killed: the pipes close. The first write to them (the "cut
    // short" message) raises SIGPIPE, and a signal ends dash without its EXIT trap unless the script turns it into an exit.
    const files = [at('one.conf', 'v2 of one, long enough\n'), at('two.conf', 'two\n')]
    mkdirSync(dirname(files[0]!.path), {recursive: true})
    writeFileSync(files[0]!.path, 'v1\n')
    const child = spawn('/bin/sh', ['-c', writeFilesScript(files)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: {PATH: '/usr/sbin:/usr/bin:/sbin:/bin'},
    })
    child.stdout.destroy()
    child.stderr.destroy()
    child.stdin.end(batchInput(files).slice(0, 10))
    const [code] = (await once(child, 'exit')) as [number | null]
    expect(code).not.toBe(0)
    expect(readFileSync(files[0]!.path, 'utf8')).toBe('v1\n')
    expect(straysIn(dirname(files[0]!.path))).toEqual([])
    expect(existsSync(files[1]!.path)).toBe(false)
  })

  test("a temp file an earlier write left (its shell SIGKILLed) goes with the next write of that file; another file's stays", () => {
    const files = [at('a.conf', 'a\n'), at('b.conf', 'b\n')]
    const dir = dirname(files[0]!.path)
    mkdirSync(dir, {recursive: true})
    writeFileSync(join(dir, '.a.conf.foobar-0123456789ab'), 'half')
    writeFileSync(join(dir, '.c.conf.foobar-0123456789ab'), 'another file of the directory')
    const r = writeAll(files)
    expect(r.status, r.stderr).toBe(0)
    expect(
      readdirSync(dir)
        .filter((e) => e.startsWith('.'))
        .sort(),
    ).toEqual(['.c.conf.foobar-0123456789ab'])
    expect(readFileSync(files[0]!.path, 'utf8')).toBe('a\n')
  })
})

describe('writeBatches: each round trip within the command line a host accepts', () => {
  // The batch script is one argument of the remote shell's command line: Linux refuses one over 128 KiB (E2BIG).
  const inDir = (dir: string, n: number) =>
    Array.from({length: n}, (_, i) => ({
      file: {path: `${dir}/file-number-${i}.conf`, content: 'x\n', mode: 0o644, owner: 'root', group: 'root'} as DesiredFile,
    }))
  const commandOf = (cs: Array<{file: DesiredFile}>) =>
    commandFor(writeFilesScript(cs.map((c) => c.file)), {root: true, user: 'deploy', stdin: 'x'}).command

  test('64 files in a deep directory: several batches, each a command line exec accepts, every file once and in order', () => {
    const files = inDir('/etc/systemd/system/prometheus-mysqld-exporter.service.d', 64)
    // As one batch, the command line is too long for exec: the host's shell would never start.
    expect(spawnSync('/bin/true', [commandOf(files)]).error).toMatchObject({code: 'E2BIG'})
    const batches = writeBatches(files)
    expect(batches.length).toBeGreaterThan(1)
    expect(batches.flat()).toEqual(files)
    for (const b of batches) {
      expect(Buffer.byteLength(commandOf(b))).toBeLessThanOrEqual(WRITE_BATCH_BYTES + 4096)
      expect(spawnSync('/bin/true', [commandOf(b)]).error).toBeUndefined()
    }
  })

  test("a host's usual files go in one round trip", () => {
    const files = inDir('/etc/foobar', 45)
    expect(writeBatches(files)).toEqual([files])
  })
})
