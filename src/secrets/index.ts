import {readFileSync} from 'node:fs'
import {UserError} from '../util/errors.js'
import type {SecretRef} from '../inventory/primitives.js'

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
    try {
      value = readFileSync(ref.file, 'utf8').replace(/\r?\n$/, '')
    } catch (error) {
      throw new UserError(
        `${field}: cannot read the secret file ${ref.file} (${(error as NodeJS.ErrnoException).code ?? String(error)}); nothing was changed`,
      )
    }
    if (value === '') throw new UserError(`${field}: the secret file ${ref.file} is empty (nothing was changed)`)
  }
  if (/[\n\r\0]/.test(value)) throw new UserError(`${field}: the secret must be a single line`)
  return value
}

/** For SQL string literals: the secret goes to mysql on stdin, never on a command line. */
export function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}
