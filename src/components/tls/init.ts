import {existsSync} from 'node:fs'
import {join} from 'node:path'
import type {TlsMaterial} from '../../engine/contract.js'
import {type Stack, certRequests, desiredState} from '../../engine/desired.js'
import type {Host, Inventory} from '../../inventory/index.js'
import type {Transport} from '../../remote/runner.js'
import {UserError} from '../../util/errors.js'
import {pool} from '../../util/pool.js'
import {shq} from '../../util/shell.js'
import {PENDING, prepareTlsMaterial, stateDirPath} from './material.js'
import {TLS_PATHS} from './profile.js'

/*
 * Key material is created by provision and `foobar cert` (never by plan or verify). Before the internal CA is
 * created on a control machine that has none, the hosts are asked whether they already carry one: then this
 * machine is missing the state directory of the machine that provisioned them, and a new CA would silently
 * replace the one every host trusts.
 */

/** Files on a host that hold foobar's internal CA (or a certificate from it), for this inventory's source. */
export function caFilesOnHosts(stack: Stack, inv: Inventory, host: Host): string[] {
  const known: string[] = [TLS_PATHS.dbCa, '/etc/foobar/db-endpoint/ca.pem', '/etc/foobar/tls/log-ca.pem']
  if (inv.tlsSource.type !== 'files') known.push(TLS_PATHS.backendCa)
  if (inv.tlsSource.type === 'self-signed') known.push(TLS_PATHS.cert)
  try {
    // Every file a component builds from the internal CA (the stand-in marks them).
    const pending: TlsMaterial = {
      siteChain: PENDING.cert,
      siteKey: PENDING.key,
      backendCa: PENDING.cert,
      internalCa: PENDING.ca,
      leaves: Object.fromEntries(
        Object.entries(certRequests(stack, inv)).flatMap(([h, reqs]) =>
          reqs.map((r) => [`${r.name}-${h}`, {cert: PENDING.cert, key: PENDING.key}]),
        ),
      ),
    }
    const d = desiredState(stack, inv, host, {material: pending})
    known.push(...d.files.filter((f) => f.content.includes(PENDING.ca)).map((f) => f.path))
  } catch {
    // A component that cannot render without its secrets: the known paths above still apply.
  }
  return [...new Set(known)].sort()
}

export interface CreateOptions {
  transport: Transport
  /** The hosts to ask (default: every host of the inventory). */
  hosts?: Host[]
  concurrency?: number
}

/**
 * When the state directory has no internal CA: asks every reachable host whether it already carries foobar's
 * internal CA, and stops (exit 2, nothing created) if one does. Unreachable hosts are not counted (the run reports
 * them).
 */
export async function refuseNewCaOverExisting(stack: Stack, inv: Inventory, o: CreateOptions): Promise<void> {
  const dir = stateDirPath(inv)
  if (existsSync(join(dir, 'internal-ca.crt')) && existsSync(join(dir, 'internal-ca.key'))) return
  const hosts = o.hosts ?? inv.hosts
  const found = (
    await pool(hosts, o.concurrency ?? 10, async (host) => {
      let runner
      try {
        runner = await o.transport.open(host)
        const paths = caFilesOnHosts(stack, inv, host)
        const r = await runner.run(`for f in ${paths.map(shq).join(' ')}; do if [ -e "$f" ]; then echo "$f"; fi; done; true`, {
          check: false,
        })
        const present = r.stdout.split('\n').filter((l) => paths.includes(l.trim()))
        return present.length ? [`${host.name}: ${present.join(', ')}`] : []
      } catch {
        return []
      } finally {
        runner?.close()
      }
    })
  ).flat()
  if (found.length === 0) return
  throw new UserError(
    `the state directory ${dir} has no internal CA, but the hosts already carry foobar's internal CA: not creating a new one`,
    found,
    [
      `Copy the state directory ${dir} (internal-ca.crt, internal-ca.key and the key pairs next to them, mode 0700) from the machine that provisioned these hosts, or point tls.source.state_dir at it, then run again.`,
      'To replace the internal CA on purpose, remove those files from the hosts first.',
    ],
  )
}

/**
 * The run's material, created where missing (state directory, internal CA, leaves, ACME placeholder): for
 * provision and `foobar cert`. Refuses a new CA over hosts that carry one (see refuseNewCaOverExisting).
 */
export async function createTlsMaterial(stack: Stack, inv: Inventory, o: CreateOptions): Promise<TlsMaterial> {
  await refuseNewCaOverExisting(stack, inv, o)
  return prepareTlsMaterial(inv, certRequests(stack, inv), {create: true})
}
