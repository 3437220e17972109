import {existsSync} from 'node:fs'
import {mkdir, readFile, rm, writeFile, readdir, chmod} from 'node:fs/promises'
import path from 'node:path'
import {IMAGE_DIR, IMAGE_MARKER} from './paths.js'
import {run} from './exec.js'

/** Bump when the recipe below changes: a cached image with another version is rebuilt. */
const IMAGE_VERSION = 1
const MIRROR = 'http://deb.debian.org/debian'
const PACKAGES = [
  'systemd',
  'systemd-sysv',
  'dbus',
  'openssh-server',
  'sudo',
  'iproute2',
  'iputils-ping',
  'ca-certificates',
  'curl',
  'procps',
  'netcat-openbsd',
  'less',
  'python3',
]
/** Periodic jobs that would make hosts busy at random moments during tests. */
const MASKED_UNITS = ['apt-daily.timer', 'apt-daily-upgrade.timer', 'e2scrub_all.timer', 'fstrim.timer', 'e2scrub_reap.service']
export const ADMIN_USER = 'deploy'

const SOURCES = `Types: deb
URIs: ${MIRROR}
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

// Every clone of the image must get its own host keys: they are generated at first boot, before sshd starts.
const HOSTKEYS_UNIT = `[Unit]
Description=Generate this host's own SSH host keys (foobar lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target
`

export interface ImageResult {
  dir: string
  built: boolean
  seconds: number
}

export async function imageIsComplete(): Promise<boolean> {
  if (!existsSync(IMAGE_MARKER)) return false
  const marker = JSON.parse(await readFile(IMAGE_MARKER, 'utf8')) as {version?: number}
  return marker.version === IMAGE_VERSION
}

/** The shared read-only lower layer of every host: a bare bookworm, like a fresh VPS. Built once, cached. */
export async function ensureImage(log: (line: string) => void = () => {}): Promise<ImageResult> {
  const started = Date.now()
  if (await imageIsComplete()) return {dir: IMAGE_DIR, built: false, seconds: 0}
  log(`building the Debian 12 image in ${IMAGE_DIR} (debootstrap, ~150 s, once)`)
  await rm(IMAGE_MARKER, {force: true})
  await rm(IMAGE_DIR, {recursive: true, force: true})
  await mkdir(path.dirname(IMAGE_DIR), {recursive: true})
  await run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, 'bookworm', IMAGE_DIR, MIRROR], {
    what: 'lab image: debootstrap',
    timeoutMs: 20 * 60_000,
  })
  await configureImage(IMAGE_DIR)
  await writeFile(IMAGE_MARKER, JSON.stringify({version: IMAGE_VERSION, builtAt: new Date().toISOString()}) + '\n')
  return {dir: IMAGE_DIR, built: true, seconds: (Date.now() - started) / 1000}
}

async function configureImage(dir: string): Promise<void> {
  const inImage = (p: string) => path.join(dir, p)
  const chroot = (what: string, ...args: string[]) => run('chroot', [dir, ...args], {what: `lab image: ${what}`})

  await rm(inImage('etc/apt/sources.list'), {force: true})
  await writeFile(inImage('etc/apt/sources.list.d/debian.sources'), SOURCES)

  await chroot('add the deploy user', 'useradd', '--create-home', '--shell', '/bin/bash', ADMIN_USER)
  // No password at all ('*'): key login only, sudo without a password.
  await chroot('lock the deploy password', 'usermod', '--password', '*', ADMIN_USER)
  await writeFile(inImage(`etc/sudoers.d/${ADMIN_USER}`), `${ADMIN_USER} ALL=(ALL) NOPASSWD:ALL\n`, {mode: 0o440})

  // Identity that must differ per host: systemd makes a machine-id when the file is empty; host keys at first boot.
  await writeFile(inImage('etc/machine-id'), '')
  await rm(inImage('var/lib/dbus/machine-id'), {force: true})
  for (const f of await readdir(inImage('etc/ssh'))) {
    if (f.startsWith('ssh_host_')) await rm(inImage(`etc/ssh/${f}`))
  }
  await writeFile(inImage('etc/systemd/system/foobar-lab-hostkeys.service'), HOSTKEYS_UNIT)
  await chroot('enable host key generation', 'systemctl', 'enable', 'foobar-lab-hostkeys.service')
  await chroot('mask periodic jobs', 'systemctl', 'mask', ...MASKED_UNITS)
  await writeFile(inImage('etc/hostname'), 'localhost\n')

  await chroot('apt-get clean', 'apt-get', 'clean')
  await chmod(dir, 0o755)
}
