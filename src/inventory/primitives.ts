import {isIP} from 'node:net'
import ipaddr from 'ipaddr.js'
import * as z from 'zod'

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

/**
 * Why an address cannot be a host's, or undefined when it can (ipaddr.js knows the special ranges). A host's
 * address is where the other hosts and foobar reach it and what its services bind to: the unspecified address
 * would bind them to every interface, a loopback address is every host itself, and a zone id is understood by
 * some configs and dropped by others (ufw).
 */
export function hostAddressProblem(value: string): string | undefined {
  if (isIP(value) === 0) return 'must be an IPv4 or IPv6 address'
  if (value.includes('%'))
    return 'has a zone id (%...): not supported (ufw drops it, HAProxy and MySQL keep it); use a global or unique-local address'
  const ip = ipaddr.parse(value)
  const range = ip.range()
  if (range === 'unspecified')
    return "is the unspecified address (every interface), not a host: services would listen on every interface; give the host's own address"
  if (range === 'multicast') return 'is a multicast address, not a host'
  if (range === 'broadcast') return 'is the broadcast address, not a host'
  if (range === 'loopback') return 'is a loopback address: to each host it is itself; give an address the other hosts and foobar can reach'
  if (range === 'linkLocal' && ip.kind() === 'ipv6')
    return 'is an IPv6 link-local address: it is reachable only with a zone id; use a global or unique-local address'
  return undefined
}

/** One spelling per host: an IPv4-mapped IPv6 address (::ffff:203.0.113.10) is the IPv4 host (203.0.113.10). */
export function normaliseHostAddress(value: string): string {
  if (isIP(value) !== 6 || value.includes('%')) return value
  const ip = ipaddr.IPv6.parse(value)
  return ip.isIPv4MappedAddress() ? ip.toIPv4Address().toString() : value
}

/** The key two spellings of one host share (for duplicates): IPv4-mapped as IPv4, IPv6 in its canonical form. */
export function addressKey(value: string): string {
  if (isIP(value) === 0) return value
  const ip = ipaddr.parse(value.split('%')[0]!)
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) return (ip as ipaddr.IPv6).toIPv4Address().toString()
  return ip.toString()
}

export const ipAddress = z
  .string()
  .check((ctx) => {
    const problem = hostAddressProblem(ctx.value)
    if (problem) ctx.issues.push({code: 'custom', message: problem, input: ctx.value})
  })
  .transform(normaliseHostAddress)

export function isCidr(value: string): boolean {
  const [ip, prefix, ...rest] = value.split('/')
  if (rest.length > 0 || ip === undefined || ip.includes('%')) return false
  const family = isIP(ip)
  if (family === 0) return false
  if (prefix === undefined) return true
  if (!/^\d{1,3}$/.test(prefix)) return false
  return Number(prefix) <= (family === 4 ? 32 : 128)
}

/** `a.b.c.d/n` (IPv4, a bare address /32) or `x::y/n` (IPv6, /128); IPv4-mapped networks (::ffff:a.b.c.d/96+) as IPv4. */
function normaliseCidr(value: string): string {
  const [ip, prefix] = value.split('/') as [string, string | undefined]
  const family = isIP(ip)
  const bits = prefix === undefined ? (family === 4 ? 32 : 128) : Number(prefix)
  if (family === 6 && bits >= 96) {
    const v6 = ipaddr.IPv6.parse(ip)
    if (v6.isIPv4MappedAddress()) return `${v6.toIPv4Address().toString()}/${bits - 96}`
  }
  return `${ip}/${bits}`
}

/** A network that is every address of its family (0.0.0.0/0, ::/0): "anywhere". */
export const isAnyAddress = (cidr: string): boolean => cidr.endsWith('/0')

/** An address or network; a bare address means that one host. */
export const cidr = z
  .string()
  .refine(isCidr, {error: 'must be an IP address or CIDR network such as 203.0.113.0/24 or 2001:db8::/32 (no zone id)'})
  .transform(normaliseCidr)

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

/**
 * A health path (the load balancer's check, the app's own): a URL path, not one of foobar's own under `/.foobar-`
 * (nginx maps BACKEND_HEALTH_PATH to it; HAProxy answers LB_SERVING_PATH itself).
 */
export const healthPath = urlPath.refine((p) => !p.startsWith('/.foobar-'), {
  error: "must be the app's own path: /.foobar-... is foobar's (the load balancer's check and its own answers)",
})

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
