import {type Host, sshUser} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'

export const SSHD_DROPIN = '/etc/ssh/sshd_config.d/50-foobar.conf'

/**
 * Pseudo-service notified by the drop-in: sshd is reloaded by the hardening's own guarded step (automatic revert
 * unless a fresh connection works), never by the engine's plain reload.
 */
export const SSHD_GUARDED = 'ssh-hardened'

/*
 * What ssh-audit 2.5.0 (Debian 12) passes without a note against OpenSSH 9.2. It warns about
 * sntrup761x25519-sha512 ("experimental", "unknown"), so the post-quantum exchange is left out until the auditor
 * knows it; group-exchange is left out so that /etc/ssh/moduli cannot weaken it; only encrypt-then-MAC MACs with
 * a tag of 128 bits or more. Every entry is also in the SSH library foobar connects with (ssh2).
 */
export const ALGORITHMS = {
  kexAlgorithms: ['curve25519-sha256', 'curve25519-sha256@libssh.org', 'diffie-hellman-group16-sha512', 'diffie-hellman-group18-sha512'],
  ciphers: ['chacha20-poly1305@openssh.com', 'aes256-gcm@openssh.com', 'aes128-gcm@openssh.com', 'aes256-ctr', 'aes192-ctr', 'aes128-ctr'],
  macs: ['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com'],
  hostKeyAlgorithms: ['ssh-ed25519', 'rsa-sha2-512', 'rsa-sha2-256'],
}

/** The drop-in for one host. The ssh user is always in AllowUsers, so the list can never shut foobar out. */
export function renderSshd(host: Host): string {
  const {allowUsers, allowGroups} = host.hardening
  return renderTemplate('hardening/sshd.conf', {
    host: host.name,
    // Root keeps key login only when foobar itself logs in as root (an inventory without a sudo user).
    permitRootLogin: sshUser(host) === 'root' ? 'prohibit-password' : 'no',
    allowUsers: allowUsers.length ? [...new Set([sshUser(host), ...allowUsers])] : [],
    allowGroups,
    maxSessions: host.hardening.maxSessions,
    ...ALGORITHMS,
  })
}

/**
 * `sshd -t` reads the whole configuration (main file and drop-ins), so it runs with the drop-in in place; the
 * engine puts the previous file back if it fails. Nothing is reloaded at that point.
 */
export const SSHD_VALIDATE = {mode: 'config', command: 'sshd -t'} as const
