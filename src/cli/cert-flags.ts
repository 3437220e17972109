import {Flags} from '@oclif/core'

export const certFlags = {
  directory: Flags.string({summary: 'ACME directory URL (overrides tls.source.directory): production, staging or any ACME CA.'}),
  force: Flags.boolean({summary: 'Renew even if not due.'}),
  days: Flags.integer({summary: 'Renew when this many days or fewer are left (default: a third of the lifetime).', min: 0}),
  'lock-wait': Flags.integer({summary: 'Seconds to wait for another renewal to finish.', default: 600, min: 0}),
}
