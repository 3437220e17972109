/*
 * Secret files ({file: PATH}) are local files like any other foobar reads: a regular file of bounded size, opened
 * without blocking; a FIFO, /dev/zero or a directory is a prompt, clear error (exit 2, the field and the path).
 * A secret file others can read is a warning from checkSecret (for `inventory check`), never the value.
 */
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {MAX_SECRET_BYTES, checkSecret, readSecret} from '../../src/secrets/index.js'
import {exitCodeOf} from '../../src/util/errors.js'

const TMP = mkdtempSync(join(tmpdir(), 'foobar-secretfiles-'))
afterAll(() => rmSync(TMP, {recursive: true, force: true, maxRetries: 5}))

function error(f: () => unknown): Error {
  try {
    f()
  } catch (e) {
    return e as Error
  }
  throw new Error('no error')
}

describe('secret files', () => {
  test('a FIFO is refused at once (no writer needed), exit 2', () => {
    const fifo = join(TMP, 'fifo')
    execFileSync('mkfifo', [fifo])
    const started = Date.now()
    const e = error(() => readSecret({file: fifo}, 'mysql.replication_password'))
    expect(Date.now() - started).toBeLessThan(1000)
    expect(e.message).toBe(`mysql.replication_password (secret file): ${fifo} is a named pipe (FIFO), not a regular file`)
    expect(exitCodeOf(e)).toBe(2)
  })

  test('/dev/zero and a directory: clear messages, exit 2', () => {
    const zero = error(() => readSecret({file: '/dev/zero'}, 'mysql.monitor_password'))
    expect(zero.message).toBe('mysql.monitor_password (secret file): /dev/zero is a character device, not a regular file')
    expect(exitCodeOf(zero)).toBe(2)
    const dir = join(TMP, 'dir')
    mkdirSync(dir)
    const d = error(() => readSecret({file: dir}, 'mysql.monitor_password'))
    expect(d.message).toBe(`mysql.monitor_password (secret file): ${dir} is a directory, not a regular file`)
    expect(exitCodeOf(d)).toBe(2)
  })

  test('larger than a secret can be: refused; missing: exit 2', () => {
    const big = join(TMP, 'big')
    writeFileSync(big, 'x'.repeat(MAX_SECRET_BYTES + 1))
    expect(error(() => readSecret({file: big}, 'f')).message).toMatch(/is too large/)
    const missing = error(() => readSecret({file: join(TMP, 'missing')}, 'f'))
    expect(missing.message).toBe(`f (secret file): ${join(TMP, 'missing')} does not exist`)
    expect(exitCodeOf(missing)).toBe(2)
  })

  test('a good file is read (one trailing newline dropped); open to others: a warning without the value', () => {
    const f = join(TMP, 'good')
    writeFileSync(f, 'S3cret-value-123\n', {mode: 0o600})
    expect(readSecret({file: f}, 'f')).toBe('S3cret-value-123')
    expect(checkSecret({file: f}, 'f')).toEqual({warnings: []})
    const open = join(TMP, 'open')
    writeFileSync(open, 'S3cret-value-123\n', {mode: 0o640})
    const {warnings} = checkSecret({file: open}, 'mysql.replication_password')
    expect(warnings).toEqual([`mysql.replication_password (secret file): ${open} is open to its group (mode 0640); chmod 600 ${open}`])
    expect(warnings.join()).not.toContain('S3cret')
  })
})
