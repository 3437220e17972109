import {Flags} from '@oclif/core'

/** Flags shared by the commands that reach hosts. */
export const connectFlags = {
  'accept-new-host-keys': Flags.boolean({summary: 'Record unknown host keys (trust on first use). A changed key is always refused.'}),
  concurrency: Flags.integer({summary: 'Hosts worked on at once.', default: 10, min: 1, max: 200}),
}

/**
 * `--limit web1,lb`: declared by each command that works on a subset of the hosts, and resolved there with
 * `this.limitHosts(inv, this.flags.limit)` (src/inventory/select.ts: host names or roles; an unknown name is exit 2
 * with the list). A command that does not declare it rejects it (oclif: unknown flag, exit 2).
 */
export const limitFlag = Flags.string({
  summary:
    "Only these hosts or roles: comma-separated host names, roles, patterns over host names ('web*', 'web[12]'), each may be negated to leave hosts out ('!web2'). An unknown name is an error.",
  multiple: true,
  delimiter: ',',
  helpGroup: 'GLOBAL',
})

/**
 * `--wait SECONDS`: declared by the commands that change hosts. One run at a time changes an inventory's hosts;
 * without it a second run names the holder and exits 5, with it the run waits that long for the lock first.
 */
export const waitFlag = Flags.integer({
  summary: 'Wait up to SECONDS for another run that holds the lock (default: refuse at once, exit 5, naming it).',
  default: 0,
  min: 0,
})
