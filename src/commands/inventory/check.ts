import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {LocalFilesError, loadRoutes, localReads, runReads, secretRead} from '../../cli/local-files.js'
import {STACK} from '../../components/index.js'
import {type Inventory, loadInventory} from '../../inventory/index.js'

export default class InventoryCheck extends FoobarCommand<typeof InventoryCheck> {
  static summary = 'Validate the inventory: every problem at once, with file:line:column. Exit 2 if invalid.'
  static description =
    'Also reads every local file and secret the inventory refers to (identity files, known_hosts, secret files and environment variables, tls.source files), the way every command reads them before contacting a host: each must exist and be a regular file of bounded size (an identity file a usable private key); a private key or secret file others can read is a warning. --no-files checks the inventory file alone.'
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
    if (this.flags.files) await this.checkFiles(inv)
    this.say(
      `${this.flags.inventory}: valid (${inv.hosts.length} hosts: ${inv.hosts.map((h) => `${h.name} [${h.roles.join(',')}]`).join(', ')})`,
    )
    return {file: inv.file, valid: true, hosts: inv.hosts.length}
  }

  /**
   * Every problem at once (exit 2), reading each file the way the commands that use it do (src/cli/local-files.ts,
   * the same check and the same message as theirs); nothing is created.
   */
  private async checkFiles(inv: Inventory): Promise<void> {
    await loadRoutes(inv.hosts)
    const reads = [
      // What the commands read for every host: SSH files (ssh_config resolved), the components' secrets, tls.source.
      ...localReads(inv, inv.hosts, {stack: STACK}),
      // And every secret the inventory refers to, whether or not a host uses it as the inventory stands.
      ...inv.hosts.flatMap((h) => (h.monitoring.logService ? [secretRead('monitoring.log_service.url', h.monitoring.logService.url)] : [])),
      ...(inv.mysql?.replicas.length && inv.mysql.topology !== 'galera'
        ? [secretRead('mysql.replication_password', inv.mysql.replicationPassword)]
        : []),
      ...(inv.mysql?.monitorPassword ? [secretRead('mysql.monitor_password', inv.mysql.monitorPassword)] : []),
      ...(inv.mysql?.app ? [secretRead('mysql.app.password', inv.mysql.app.password)] : []),
    ]
    const {problems, warnings} = runReads(reads)
    for (const w of warnings) this.warn(w)
    if (problems.length > 0) {
      throw new LocalFilesError(this.flags.inventory, problems, [
        'Fix them, or run `foobar inventory check --no-files` to check the inventory file alone.',
      ])
    }
  }
}
