import {Flags} from '@oclif/core'

/** Flags shared by the commands that reach hosts. */
export const connectFlags = {
  'accept-new-host-keys': Flags.boolean({summary: 'Record unknown host keys (trust on first use). A changed key is always refused.'}),
  concurrency: Flags.integer({summary: 'Hosts worked on at once.', default: 10, min: 1, max: 200}),
}
