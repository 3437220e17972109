import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {checkTlsSource} from '../../components/tls/index.js'
import {loadInventory} from '../../inventory/index.js'
import {readLocalFile, readableByOthers} from '../../remote/local-file.js'
import {checkSecret} from '../../secrets/index.js'
import {UserError} from '../../util/errors.js'

const MAX_KEY_BYTES = 64 * 1024

export default class InventoryCheck extends FoobarCommand<typeof InventoryCheck> {
  static summary = 'Validate the inventory: every problem at once, with file:line:column. Exit 2 if invalid.'
  static description =
    'Also reads every local file and secret the inventory refers to (identity files, known_hosts, secret files and environment variables, tls.source files): each must exist and be a regular file of bounded size; a private key or secret file others can read is a warning. --no-files checks the inventory file alone.'
  static examples = ['<%= config.bin %> inventory check -i inventories/foobar.yml', '<%= config.bin %> inventory check --no-files']
  static flags = {
    files: Flags.boolean({
      summary: 'Also check the local files and secrets it refers to (--no-files: only the inventory).',
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<{file: string; valid: true; hosts: number}> {
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    if (this.flags.files) this.checkFiles(inv)
    this.say(
      `${this.flags.inventory}: valid (${inv.hosts.length} hosts: ${inv.hosts.map((h) => `${h.name} [${h.roles.join(',')}]`).join(', ')})`,
    )
    return {file: inv.file, valid: true, hosts: inv.hosts.length}
  }

  /** Every problem at once (exit 2), reading each file the way the commands that use it do; nothing is created. */
  private checkFiles(inv: Awaited<ReturnType<typeof loadInventory>>): void {
    const problems: string[] = []
    const attempt = (fn: () => string[] | void) => {
      try {
        for (const w of fn() ?? []) this.warn(w)
      } catch (error) {
        problems.push(error instanceof Error ? error.message : String(error))
        if (error instanceof UserError) problems.push(...error.details.map((d) => `  ${d}`))
      }
    }
    const seen = new Set<string>()
    for (const h of inv.hosts) {
      const key = h.ssh.identityFile
      if (key && !seen.has(`key ${key}`)) {
        seen.add(`key ${key}`)
        attempt(() => {
          const f = readLocalFile(key, `ssh.identity_file (host ${h.name})`, {maxBytes: MAX_KEY_BYTES})
          const w = readableByOthers(`ssh.identity_file (host ${h.name})`, key, f.mode)
          return w ? [w] : []
        })
      }
      const known = h.ssh.knownHosts
      if (known && !seen.has(`known ${known}`)) {
        seen.add(`known ${known}`)
        attempt(() => void readLocalFile(known, `ssh.known_hosts (host ${h.name})`, {missingOk: true}))
      }
      const url = h.monitoring.logService?.url
      if (url && !seen.has(`log ${JSON.stringify(url)}`)) {
        seen.add(`log ${JSON.stringify(url)}`)
        attempt(() => checkSecret(url, 'monitoring.log_service.url').warnings)
      }
    }
    if (inv.mysql?.replicas.length) attempt(() => checkSecret(inv.mysql!.replicationPassword, 'mysql.replication_password').warnings)
    if (inv.mysql?.monitorPassword) attempt(() => checkSecret(inv.mysql!.monitorPassword, 'mysql.monitor_password').warnings)
    if (inv.mysql?.app) attempt(() => checkSecret(inv.mysql!.app!.password, 'mysql.app.password').warnings)
    // tls.source files: PEM, a certificate chain and its matching key, names covering the site (reads, creates nothing).
    attempt(() => void checkTlsSource(inv))
    if (problems.length) {
      throw new UserError(
        `${this.flags.inventory}: ${problems.length} problem${problems.length > 1 ? 's' : ''} with the files and secrets it refers to`,
        problems,
        ['Fix them, or run `foobar inventory check --no-files` to check the inventory file alone.'],
      )
    }
  }
}
