import {UserError} from '../util/errors.js'
import {readLocalFile, readableByOthers} from '../remote/local-file.js'
import type {SecretRef} from '../inventory/primitives.js'

/** A secret is one line; a secret file is never larger than this. */
export const MAX_SECRET_BYTES = 64 * 1024

/**
 * Secrets are read at run time from where the inventory points (an environment variable or a file), never
 * written in the inventory and never printed: only the reference appears in messages.
 */
export function readSecret(ref: SecretRef | undefined, field: string): string {
  if (!ref) throw new UserError(`${field} is not set: give a secret reference, {env: NAME} or {file: PATH}`)
  let value: string | undefined
  if ('env' in ref) {
    value = process.env[ref.env]
    if (value === undefined || value === '')
      throw new UserError(
        `${field}: environment variable ${ref.env} is not set (nothing was changed)`,
        [],
        [`export ${ref.env}=... before running foobar.`],
      )
  } else {
    // A regular file of at most 64 KiB, opened without blocking (a FIFO or /dev/zero is refused, not waited on).
    value = readLocalFile(ref.file, `${field} (secret file)`, {maxBytes: MAX_SECRET_BYTES}).text.replace(/\r?\n$/, '')
    if (value === '') throw new UserError(`${field}: the secret file ${ref.file} is empty (nothing was changed)`)
  }
  if (/[\n\r\0]/.test(value)) throw new UserError(`${field}: the secret must be a single line`)
  return value
}

/** For SQL string literals: the secret goes to mysql on stdin, never on a command line. */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

/**
 * Checks a secret reference without returning its value (for `inventory check`): set, readable, a single line; a
 * secret file that others than its owner can read is a warning. Throws the error readSecret would throw.
 */
export function checkSecret(ref: SecretRef | undefined, field: string): {warnings: string[]} {
  readSecret(ref, field)
  if (ref && 'file' in ref) {
    const warning = readableByOthers(`${field} (secret file)`, ref.file, readLocalFile(ref.file, field, {maxBytes: MAX_SECRET_BYTES}).mode)
    if (warning) return {warnings: [warning]}
  }
  return {warnings: []}
}
