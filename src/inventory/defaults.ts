import type {z} from 'zod'
import type {mergedLayer} from './schema.js'

/** The bottom layer: every field foobar needs, with the safe choice as the default (the type checks none is missing). */
export const DEFAULTS = {
  // ssh.user and ssh.port have no default here: the model keeps whether the inventory set them (see SSH_DEFAULTS).
  ssh: {sudo: true, connect_timeout: 10},
  firewall: {backend: 'ufw', extra_ports: {}, ipv6: true, revert_after: 90, allow_control_address: true, allow_any_source: {}},
  tls: {
    profile: 'intermediate',
    hsts: {enabled: true, max_age: 63072000, include_subdomains: false, preload: false},
    source: {type: 'self-signed'},
  },
  lb: {balance: 'roundrobin', health_check: '/healthz', reencrypt: true, backend_port: 443},
  nginx: {responses: []},
  monitoring: {enabled: true, sources: []},
  apt: {},
  hardening: {
    skip: {},
    allow_users: [],
    allow_groups: [],
    revert_after: 90,
    max_sessions: 2,
    shell_timeout: 900,
    thresholds: {ssh_audit_fail: 0, ssh_audit_warn: 0, lynis_min: 80},
  },
  upgrades: {origins: ['security'], start: '02:00', period_hours: 6, reboot: 'never'},
  pins: {},
} satisfies z.input<typeof mergedLayer>

/**
 * foobar's own ssh user and port, for what the inventory leaves unset. Not a layer: an unset `ssh.user` or
 * `ssh.port` stays unset in the resolved model, so that connecting can tell "written" from "defaulted" (precedence:
 * the inventory's value > ssh_config's for the host > these; see resolveRoute in src/remote/connection.ts).
 */
export const SSH_DEFAULTS = {user: 'root', port: 22} as const
