import type {Inventory} from '../../inventory/index.js'

/*
 * Where the default app finds its database (mysql.app): the address, the account, and the files systemd hands it.
 * The account itself is made on the database hosts by the app-db component.
 */

const DIR = '/etc/foobar/app'
export const APP_DB_PATHS = {
  /** The account's password: 0600 root:root, handed to the app's dynamic user by systemd (LoadCredential). */
  password: `${DIR}/db-password`,
  /** foobar's internal CA, which signed every database host's certificate (web-only hosts have no other copy). */
  ca: `${DIR}/db-ca.pem`,
} as const

/** The names the app finds the two files under in $CREDENTIALS_DIRECTORY. */
export const APP_DB_CREDENTIALS = {password: 'db-password', ca: 'db-ca'} as const

export interface AppDbTarget {
  host: string
  port: number
  user: string
  database: string
  /**
   * Whether the server certificate's name is checked (the chain always is, against the internal CA). Through the
   * endpoint the app connects to 127.0.0.1 and the certificate is the current writer's, whichever database host
   * that is: only the chain can be checked. Directly to the primary its address is known and checked too.
   */
  verifyName: boolean
  via: 'endpoint' | 'primary'
}

/** The app's database, or undefined when the inventory has no mysql.app. */
export function appDbTarget(inv: Inventory): AppDbTarget | undefined {
  const mysql = inv.mysql
  if (!mysql?.app) return undefined
  const {user, database} = mysql.app
  if (mysql.endpoint) return {host: '127.0.0.1', port: mysql.endpoint.port, user, database, verifyName: false, via: 'endpoint'}
  const primary = inv.hosts.find((h) => h.name === mysql.primary)!
  return {host: primary.address, port: mysql.port, user, database, verifyName: true, via: 'primary'}
}
