import path from 'node:path'

/** Fixed names: one lab per machine, on one private bridge and subnet. */
export const BRIDGE = 'foobar-br0'
export const BRIDGE_ADDRESS = '10.77.0.1'
export const SUBNET = '10.77.0.0/24'
/** Guests' netns and nspawn machine names start with this, so leftovers of any earlier lab are recognisable. */
export const NAME_PREFIX = 'foobar-'
/** Host-side veth names: `fbl-<last octet>` (interface names are limited to 15 characters). */
export const VETH_PREFIX = 'fbl-'
/** Issue 20 measures a 50-host fan-out; the subnet holds 253 and each booted host costs ~30-100 MiB. */
export const MAX_HOSTS = 60

export const IMAGE_DIR = '/var/cache/foobar/lab-image-bookworm'
/** Written last by the image build: an image without it is half-built and is rebuilt. */
export const IMAGE_MARKER = `${IMAGE_DIR}.complete`
/** The lab's apt cache (apt-cacher-ng): kept across `lab down --purge` like the image, so a second run downloads nothing. */
export const APT_CACHE_DIR = '/var/cache/foobar/apt-cacher-ng'

export const PORTS = {proxy: 3142, acme: 14000, acmeManagement: 15000, dns: 8053, dnsManagement: 8055} as const

export function labDir(): string {
  return process.env.FOOBAR_LAB_DIR || '/var/lib/foobar-lab'
}

export type LabPaths = ReturnType<typeof labPaths>

/** Every file the lab keeps, under one state directory. */
export function labPaths(root = labDir()) {
  const pebble = path.join(root, 'pebble')
  return {
    root,
    state: path.join(root, 'lab.json'),
    lock: path.join(root, 'lock'),
    sshKey: path.join(root, 'ssh', 'id_ed25519'),
    knownHosts: path.join(root, 'known_hosts'),
    replPassword: path.join(root, 'secrets', 'repl_password'),
    /** The default app's database account for inventories/lab-galera.yml. */
    appPassword: path.join(root, 'secrets', 'app_password'),
    /** keepalived's VRRP password for inventories/lab-ha.yml (VRRPv2: at most 8 characters). */
    vrrpPassword: path.join(root, 'secrets', 'vrrp_password'),
    hostsDir: path.join(root, 'hosts'),
    run: path.join(root, 'run'),
    logs: path.join(root, 'logs'),
    pebble: {
      dir: pebble,
      caKey: path.join(pebble, 'ca.key'),
      ca: path.join(pebble, 'ca.pem'),
      key: path.join(pebble, 'listener.key'),
      cert: path.join(pebble, 'listener.pem'),
      config: path.join(pebble, 'config.json'),
      roots: path.join(pebble, 'roots.pem'),
    },
    aptCache: {dir: path.join(root, 'apt-cache'), config: path.join(root, 'apt-cache', 'acng.conf')},
    host: (name: string) => {
      const dir = path.join(root, 'hosts', name)
      return {
        dir,
        upper: path.join(dir, 'upper'),
        work: path.join(dir, 'work'),
        root: path.join(dir, 'root'),
        log: path.join(dir, 'nspawn.log'),
        /** The supervisor loop that boots the guest again after a guest reboot (nspawn exit 133). */
        pid: path.join(dir, 'pid'),
        /** The current systemd-nspawn, rewritten by the supervisor at every boot. */
        nspawnPid: path.join(dir, 'nspawn.pid'),
      }
    },
  }
}

export const URLS = {
  proxy: `http://${BRIDGE_ADDRESS}:${PORTS.proxy}`,
  acmeDirectory: `https://${BRIDGE_ADDRESS}:${PORTS.acme}/dir`,
  acmeRoots: `https://${BRIDGE_ADDRESS}:${PORTS.acmeManagement}/roots/0`,
  dnsManagement: `http://${BRIDGE_ADDRESS}:${PORTS.dnsManagement}`,
  dns: `${BRIDGE_ADDRESS}:${PORTS.dns}`,
} as const
