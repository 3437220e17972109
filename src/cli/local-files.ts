import {checkTlsSource} from '../components/tls/index.js'
import type {Stack} from '../engine/desired.js'
import type {Host, Inventory} from '../inventory/index.js'
import type {SecretRef} from '../inventory/primitives.js'
import {type ConnectOptions, type LocalRead, connectionReads, loadRoutes} from '../remote/connection.js'
import {checkSecret} from '../secrets/index.js'
import {UserError} from '../util/errors.js'

export {loadRoutes}

/*
 * The local files and secrets foobar reads on the control machine (identity files, known_hosts, ssh_config, secret
 * files and variables, tls.source files) are read and checked before any host is contacted, the same way in every
 * command: a problem is bad input — exit 2, a LocalFilesError listing every problem, each naming the field and the
 * path — never a failed host. `inventory check` reads everything the inventory refers to; a command reads what its
 * selected hosts need (a file only an unselected host uses does not stop it). A host that cannot be reached stays
 * a failed host: nothing here touches the network.
 */

/** What a command's run reads besides the SSH files of its hosts. */
export interface LocalNeeds {
  /**
   * The components the run plans, applies or verifies: the secrets they read for the hosts (Component.secrets) and
   * the run's key material (tls.source files: every run of the stack prepares it, whatever `only` says).
   */
  stack?: Stack
  /** Only these components' secrets (firewall plan and apply: ['firewall']). */
  only?: string[]
  /** The ssh_config to resolve hosts with (tests); default OpenSSH's own. */
  ssh?: ConnectOptions
}

/** Reading a secret as the run would: set, a readable regular file, one line; readable by others is a warning. */
export function secretRead(field: string, ref: SecretRef | undefined): LocalRead {
  return {key: `secret ${field} ${JSON.stringify(ref ?? null)}`, check: () => checkSecret(ref, field).warnings}
}

/** Everything reaching `hosts` and running `needs` on them reads locally (unrun; see runReads). */
export function localReads(inv: Inventory, hosts: Host[], needs: LocalNeeds = {}): LocalRead[] {
  const reads: LocalRead[] = []
  for (const host of hosts) {
    try {
      reads.push(...connectionReads(host, needs.ssh))
    } catch (error) {
      // ssh_config that `ssh -G` refuses, a jump host that cannot be read: bad input too, listed with the rest.
      reads.push({
        key: `route ${host.name}`,
        check: () => {
          throw error
        },
      })
    }
  }
  const {stack, only} = needs
  if (stack) {
    reads.push({key: 'tls.source', check: () => (checkTlsSource(inv), [])})
    for (const c of stack.components) {
      if (!c.secrets || (only && !only.includes(c.name))) continue
      for (const host of hosts) {
        if (c.appliesTo(host, inv)) reads.push(...c.secrets({inventory: inv, host}).map((s) => secretRead(s.field, s.ref)))
      }
    }
  }
  return reads
}

export interface LocalProblem {
  message: string
  details: string[]
}

/**
 * Runs each read once (the same file for several hosts is read once, named after the first host that needs it):
 * every problem at once, and the warnings, each once.
 */
export function runReads(reads: LocalRead[]): {problems: LocalProblem[]; warnings: string[]} {
  const problems: LocalProblem[] = []
  const warnings = new Set<string>()
  const done = new Set<string>()
  for (const r of reads) {
    if (done.has(r.key)) continue
    done.add(r.key)
    try {
      for (const w of r.check()) warnings.add(w)
    } catch (error) {
      problems.push({
        message: error instanceof Error ? error.message : String(error),
        details: error instanceof UserError ? error.details : [],
      })
    }
  }
  return {problems, warnings: [...warnings]}
}

/** Local files or secrets that cannot be used: exit 2, the same message in every command (and `inventory check`). */
export class LocalFilesError extends UserError {
  constructor(inventory: string, problems: LocalProblem[], suggestions: string[]) {
    super(
      `${inventory}: ${problems.length} problem${problems.length === 1 ? '' : 's'} with the files and secrets it refers to`,
      problems.flatMap((p) => [p.message, ...p.details.map((d) => `  ${d}`)]),
      suggestions,
    )
    this.name = 'LocalFilesError'
  }
}
