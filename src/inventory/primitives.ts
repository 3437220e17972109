import {isIP} from 'node:net'
import {z} from 'zod'

/*
 * Every string that can reach a config file or a shell command is checked against a whitelist here, so a hostile
 * inventory value (`www.foobar.com; include /etc/passwd`, newlines, quotes, `$(...)`) never gets past loading.
 * Templates and command builders add a second line of defence (see src/render/safe.ts).
 */

export const hostName = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,62}$/, {error: 'must be a host name: lowercase letters, digits and hyphens, starting with a letter (max 63)'})

const DNS_NAME = /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/

export const dnsName = z
  .string()
  .regex(DNS_NAME, {error: 'must be a fully qualified DNS name such as www.example.com (lowercase letters, digits, hyphens, dots)'})

export const ipAddress = z.string().refine((v) => isIP(v) !== 0, {error: 'must be an IPv4 or IPv6 address'})

export function isCidr(value: string): boolean {
  const [ip, prefix, ...rest] = value.split('/')
  if (rest.length > 0 || ip === undefined) return false
  const family = isIP(ip)
  if (family === 0) return false
  if (prefix === undefined) return true
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/** An address or network; a bare address means that one host. */
export const cidr = z
  .string()
  .refine(isCidr, {error: 'must be an IP address or CIDR network such as 203.0.113.0/24 or 2001:db8::/32'})
  .transform((v) => (v.includes('/') ? v : `${v}/${isIP(v) === 4 ? 32 : 128}`))

export const port = z.int({error: 'must be a whole number'}).min(1, {error: 'must be a port from 1 to 65535'}).max(65535, {
  error: 'must be a port from 1 to 65535',
})

export const email = z.string().regex(/^[A-Za-z0-9._%+-]{1,64}@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
  error: 'must be an email address such as admin@example.com',
})

/** A path on the control machine: absolute, relative to the inventory, or starting with ~/. */
export const localPath = z
  .string()
  .min(1)
  .regex(/^[A-Za-z0-9._/~+@:-]+$/, {error: 'must be a path of letters, digits and . _ - + @ : ~ /'})

export const urlPath = z
  .string()
  .regex(/^\/[A-Za-z0-9._~/-]*$/, {error: 'must be a URL path such as /healthz (letters, digits, . _ ~ - /)'})

export const httpUrl = z.string().regex(/^https?:\/\/[A-Za-z0-9.:[\]-]+(?::\d{1,5})?(?:\/[A-Za-z0-9._~/%-]*)?$/, {
  error: 'must be an http:// or https:// URL without spaces, quotes or query string',
})

export const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, {error: 'must be an environment variable name such as FOOBAR_DB_PASSWORD'})

/** A secret is never written in the inventory: only where to find it. */
export const secretRef = z.union([z.strictObject({env: envName}), z.strictObject({file: localPath})], {
  error: 'must be a secret reference: {env: NAME} or {file: PATH} (never the secret itself)',
})
export type SecretRef = z.infer<typeof secretRef>
