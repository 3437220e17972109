import {existsSync} from 'node:fs'
import {BRIDGE, BRIDGE_ADDRESS, NAME_PREFIX, VETH_PREFIX} from './paths.js'
import {run} from './exec.js'

const ip = (what: string, ...args: string[]) => run('ip', args, {what, timeoutMs: 15_000})

const netnsOf = (host: string) => `${NAME_PREFIX}${host}`
export const vethOf = (address: string) => `${VETH_PREFIX}${address.split('.').pop()}`
export const netnsPath = (host: string) => `/run/netns/${netnsOf(host)}`

async function bridgeExists(): Promise<boolean> {
  return existsSync(`/sys/class/net/${BRIDGE}`)
}

/** The lab's private segment: the outer machine is 10.77.0.1 on it; nothing is routed or forwarded off it. */
export async function ensureBridge(): Promise<void> {
  if (!(await bridgeExists())) await ip(`bridge ${BRIDGE}: create`, 'link', 'add', BRIDGE, 'type', 'bridge')
  const addrs = await ip(`bridge ${BRIDGE}: read addresses`, '-o', '-4', 'addr', 'show', 'dev', BRIDGE)
  if (!addrs.stdout.includes(` ${BRIDGE_ADDRESS}/24 `)) {
    await ip(`bridge ${BRIDGE}: add ${BRIDGE_ADDRESS}/24`, 'addr', 'add', `${BRIDGE_ADDRESS}/24`, 'dev', BRIDGE)
  }
  await ip(`bridge ${BRIDGE}: up`, 'link', 'set', BRIDGE, 'up')
}

/** A host's own network namespace with eth0 (a veth into the bridge) and its address; no default route. */
export async function addHostNetwork(host: {name: string; address: string}): Promise<void> {
  const ns = netnsOf(host.name)
  const veth = vethOf(host.address)
  const what = (step: string) => `${host.name}: network: ${step}`
  await ip(what(`add netns ${ns}`), 'netns', 'add', ns)
  await ip(what(`add veth ${veth}`), 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns)
  await ip(what(`attach ${veth} to ${BRIDGE}`), 'link', 'set', veth, 'master', BRIDGE, 'up')
  await ip(what('lo up'), '-n', ns, 'link', 'set', 'lo', 'up')
  await ip(what(`address ${host.address}`), '-n', ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0')
  await ip(what('eth0 up'), '-n', ns, 'link', 'set', 'eth0', 'up')
}

/** A host's namespace and veth gone (the guest stopped first); the bridge and the other hosts' left as they are. */
export async function removeHostNetwork(host: {name: string; address: string}): Promise<void> {
  const ns = netnsOf(host.name)
  if ((await labNetns()).includes(ns)) await ip(`${host.name}: network: delete netns ${ns}`, 'netns', 'delete', ns)
  const veth = vethOf(host.address)
  if ((await labLinks()).includes(veth)) await run('ip', ['link', 'delete', veth], {what: `link ${veth}: delete`, allowFailure: true})
}

export async function labNetns(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list'], {what: 'list network namespaces'})
  return out.stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(NAME_PREFIX))
}

export async function labLinks(): Promise<string[]> {
  const out = await run('ip', ['-o', 'link', 'show'], {what: 'list links'})
  return out.stdout
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((n): n is string => n !== undefined && (n === BRIDGE || n.startsWith(VETH_PREFIX)))
}

/** PIDs still inside a lab namespace: a guest whose nspawn died keeps running there. */
export async function netnsPids(ns: string): Promise<number[]> {
  const out = await run('ip', ['netns', 'pids', ns], {what: `netns ${ns}: list processes`, allowFailure: true})
  return out.stdout.split(/\s+/).filter(Boolean).map(Number)
}

/** Remove every lab namespace and link, the bridge last; each step is idempotent. */
export async function removeNetwork(): Promise<void> {
  for (const ns of await labNetns()) await ip(`netns ${ns}: delete`, 'netns', 'delete', ns)
  const links = await labLinks()
  for (const link of links.filter((l) => l !== BRIDGE)) {
    await run('ip', ['link', 'delete', link], {what: `link ${link}: delete`, allowFailure: true})
  }
  if (links.includes(BRIDGE)) await ip(`bridge ${BRIDGE}: delete`, 'link', 'delete', BRIDGE)
}
