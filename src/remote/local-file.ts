import {closeSync, constants, fstatSync, openSync, readSync, type Stats} from 'node:fs'
import {UserError} from '../util/errors.js'

/*
 * Local files foobar reads on the control machine (identity files, known_hosts, secret files): regular files of
 * bounded size, opened without ever blocking. A FIFO is opened with O_NONBLOCK (no writer needed, nothing read
 * from it) and refused by its type; /dev/zero and other devices are refused by their type before a byte is read;
 * a file over the bound is refused by its size (and a file that grows while it is read, by the bytes read). So a
 * hostile or mistaken path ends in a clear message, exit 2, not in a hang or a process eating memory.
 */

/** The bound for every local file foobar reads (keys, known_hosts, secrets are all far smaller). */
export const MAX_LOCAL_FILE_BYTES = 1024 * 1024

/** A local file that cannot be used: names the inventory field and the path. Exit 2, like any bad input. */
export class LocalFileError extends UserError {
  constructor(
    readonly field: string,
    readonly path: string,
    readonly problem: string,
    suggestions: string[] = [],
  ) {
    super(`${field}: ${path} ${problem}`, [], suggestions)
    this.name = 'LocalFileError'
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory'
  if (st.isFIFO()) return 'a named pipe (FIFO)'
  if (st.isCharacterDevice()) return 'a character device'
  if (st.isBlockDevice()) return 'a block device'
  if (st.isSocket()) return 'a socket'
  return 'not a regular file'
}

export interface LocalFile {
  text: string
  /** Permission bits (e.g. 0o600). */
  mode: number
}

export interface ReadLocalOptions {
  maxBytes?: number
  /** A missing file is undefined instead of an error (e.g. ~/.ssh/known_hosts before the first host is recorded). */
  missingOk?: boolean
}

/** Reads a local file safely (see above). `field` names where the path came from, e.g. `ssh.identity_file (host web1)`. */
export function readLocalFile(path: string, field: string, o: ReadLocalOptions & {missingOk: true}): LocalFile | undefined
export function readLocalFile(path: string, field: string, o?: ReadLocalOptions): LocalFile
export function readLocalFile(path: string, field: string, o: ReadLocalOptions = {}): LocalFile | undefined {
  const max = o.maxBytes ?? MAX_LOCAL_FILE_BYTES
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && o.missingOk) return undefined
    if (code === 'ENOENT') throw new LocalFileError(field, path, 'does not exist')
    if (code === 'EACCES' || code === 'EPERM') throw new LocalFileError(field, path, 'cannot be read (permission denied)')
    if (code === 'ENOTDIR') throw new LocalFileError(field, path, 'does not exist (a part of the path is not a directory)')
    if (code === 'ELOOP') throw new LocalFileError(field, path, 'is a symbolic link loop')
    if (code === 'EISDIR') throw new LocalFileError(field, path, 'is a directory, not a file')
    throw new LocalFileError(field, path, `cannot be opened (${code ?? String(error)})`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new LocalFileError(field, path, `is ${kindOf(st)}, not a regular file`)
    if (st.size > max) throw new LocalFileError(field, path, `is too large (${st.size} bytes; at most ${max})`)
    const buf = Buffer.allocUnsafe(max + 1)
    let length = 0
    for (;;) {
      if (length === buf.length) break
      let n: number
      try {
        n = readSync(fd, buf, length, buf.length - length, null)
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        if (code === 'EISDIR') throw new LocalFileError(field, path, 'is a directory, not a file')
        throw new LocalFileError(field, path, `cannot be read (${code ?? String(error)})`)
      }
      if (n === 0) break
      length += n
    }
    if (length > max) throw new LocalFileError(field, path, `is too large (more than ${max} bytes)`)
    return {text: buf.subarray(0, length).toString('utf8'), mode: st.mode & 0o7777}
  } finally {
    closeSync(fd)
  }
}

/** The warning for a private key (or a secret file) that others than its owner can read; undefined when it is fine. */
export function readableByOthers(field: string, path: string, mode: number): string | undefined {
  if ((mode & 0o077) === 0) return undefined
  const who = mode & 0o007 ? 'every user' : 'its group'
  return `${field}: ${path} is open to ${who} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 ${path}`
}
