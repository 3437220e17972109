import {isIP} from 'node:net'
import {isDeepStrictEqual} from 'node:util'
import type {FieldPath, InventoryProblem} from './errors.js'
import {showValue} from './errors.js'
import {addressKey} from './primitives.js'
import type {Host, Inventory} from './resolved.js'
import type {InventoryFile} from './schema.js'

/*
 * lb.vip, the floating address the load balancers share (keepalived, src/components/keepalived): one address for
 * every load balancer, with one VRRP exchange (router id, preemption, password), checked when the inventory is
 * loaded. Whether it is on the hosts' network is only known on the hosts: the keepalived component checks that
 * against the interface it reads there.
 */

const isLb = (h: Host) => h.roles.includes('lb')

/** Where a host's lb.<field> is written: on the host, the last of its roles that sets it, or the top level. */
function origin(data: InventoryFile, index: number, field: string[]): FieldPath {
  const get = (layer: unknown): unknown =>
    field.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), layer)
  const host = data.hosts[index]
  if (get(host?.lb) !== undefined) return ['hosts', index, 'lb', ...field]
  const role = [...(host?.roles ?? [])].reverse().find((r) => get(data.roles?.[r]?.lb) !== undefined)
  if (role) return ['roles', role, 'lb', ...field]
  return ['lb', ...field]
}

export function floatingAddress(data: InventoryFile, inv: Inventory): {problems: InventoryProblem[]; warnings: string[]} {
  const problems: InventoryProblem[] = []
  const warnings: string[] = []
  const lbs = inv.hosts.map((h, i) => ({h, i})).filter(({h}) => isLb(h))
  const withVip = lbs.filter(({h}) => h.lb.vip !== undefined)
  if (withVip.length === 0) {
    if (lbs.length > 1) {
      warnings.push(
        `lb: ${lbs.map(({h}) => h.name).join(', ')} have the lb role but no lb.vip: each serves on its own address, and clients must be sent to them (DNS); set lb.vip for a floating address that moves to a healthy one`,
      )
    }
    return {problems, warnings}
  }
  const [first] = withVip
  const {h: ref, i: refIndex} = first!
  for (const {h, i} of lbs) {
    if (h.lb.vip === undefined) {
      problems.push({
        path: ['hosts', i, 'roles'],
        message: `${h.name} is a load balancer without lb.vip, but ${ref.name} has ${ref.lb.vip}: every load balancer shares the one floating address; set lb.vip at the top level or in roles.lb`,
      })
      continue
    }
    if (h === ref) continue
    if (addressKey(h.lb.vip) !== addressKey(ref.lb.vip!)) {
      problems.push({
        path: origin(data, i, ['vip']),
        message: `${h.name}'s lb.vip ${h.lb.vip} differs from ${ref.name}'s ${ref.lb.vip}: the load balancers share one floating address; set it once, at the top level or in roles.lb`,
      })
    }
    const fields: Array<[keyof NonNullable<Host['lb']['vrrp']>, string]> = [
      ['routerId', 'router_id'],
      ['preempt', 'preempt'],
      ['password', 'password'],
    ]
    for (const [key, name] of fields) {
      if (!isDeepStrictEqual(h.lb.vrrp?.[key], ref.lb.vrrp?.[key])) {
        problems.push({
          path: origin(data, i, ['vrrp', name]),
          message: `${h.name}'s lb.vrrp.${name} differs from ${ref.name}'s: the load balancers sharing lb.vip take part in one VRRP exchange; set it once, at the top level or in roles.lb`,
        })
      }
    }
  }
  const vip = ref.lb.vip!
  const vipPath = origin(data, refIndex, ['vip'])
  if (isIP(vip) === 6) {
    problems.push({
      path: vipPath,
      message: `${showValue(vip)}: an IPv6 floating address needs VRRPv3, which has no authentication; only IPv4 is supported`,
    })
  }
  const owner = inv.hosts.find((h) => addressKey(h.address) === addressKey(vip))
  if (owner) {
    problems.push({
      path: vipPath,
      message: `${showValue(vip)} is ${owner.name}'s own address: the floating address must be one no host has`,
    })
  }
  for (const {h, i} of withVip) {
    if (h.family !== 4) {
      problems.push({
        path: ['hosts', i, 'address'],
        message: `${h.name} is a load balancer sharing the IPv4 floating address ${vip}, so its own address must be IPv4 too (VRRP runs between the load balancers' addresses)`,
      })
    }
  }
  if (ref.lb.vrrp?.password === undefined) {
    problems.push({
      path: origin(data, refIndex, ['vrrp']),
      message:
        'lb.vrrp.password is required with lb.vip: a secret reference, {env: NAME} or {file: PATH} (VRRP authentication, at most 8 characters)',
    })
  }
  if (withVip.length === 1) {
    warnings.push(`lb.vip ${vip} with one load balancer (${ref.name}): there is no other to take the address over`)
  }
  return {problems, warnings}
}
