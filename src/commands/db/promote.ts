import {Args, Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {UserError} from '../../util/errors.js'
import {connectFlags} from '../../cli/run-flags.js'
import {type PromoteResult, promote} from '../../components/mysql/replicate.js'
import {loadInventory} from '../../inventory/index.js'
import {setPrimary} from '../../inventory/write.js'
import {sshTransport} from '../../remote/connection.js'
import {runnerCache} from '../../remote/runner.js'
import {readSecret} from '../../secrets/index.js'

export default class DbPromote extends FoobarCommand<typeof DbPromote> {
  static summary = 'Controlled failover: make a replica the primary without losing committed transactions.'
  static description =
    'Fences the old primary (read-only) if it is reachable, waits until the replica has everything it committed, promotes the replica, and repoints the other database hosts (the old primary becomes a replica). Refuses when no loss cannot be proven, unless --force.'
  static args = {replica: Args.string({description: 'The replica to promote.', required: true})}
  static flags = {
    ...connectFlags,
    force: Flags.boolean({
      summary:
        'Promote even if the old primary is unreachable, its database does not answer, or the replica has not caught up (may lose transactions; the old primary stays fenced).',
    }),
    write: Flags.boolean({summary: 'Update the inventory file (mysql.primary and mysql.replicas).'}),
    timeout: Flags.integer({summary: 'Seconds to wait for the replica to catch up.', default: 60, min: 1}),
    yes: Flags.boolean({char: 'y', summary: 'Do not ask (required without a terminal).'}),
  }

  async run(): Promise<PromoteResult & {inventoryUpdated: boolean}> {
    const inv = await loadInventory(this.flags.inventory)
    const name = this.args.replica
    const target = inv.hosts.find((h) => h.name === name)
    if (!inv.mysql?.primary) throw new UserError('the inventory has no mysql.primary')
    if (inv.mysql.topology === 'galera')
      throw new UserError('topology: galera: every member takes writes, there is nothing to promote', [
        'the database endpoint moves to the next synced member on its own; foobar db status shows the cluster',
      ])
    if (name === inv.mysql.primary)
      throw new UserError(`${name} is already the primary`, [], [`Replicas: ${inv.mysql.replicas.join(', ') || 'none'}`])
    if (!target || target.db?.role !== 'replica')
      throw new UserError(
        `${name} is not a replica in ${this.flags.inventory}`,
        [],
        [`Replicas: ${inv.mysql.replicas.join(', ') || 'none'}`],
      )
    const password = readSecret(inv.mysql.replicationPassword, 'mysql.replication_password')
    // Every database host is reached (the old primary fenced, the others repointed).
    await this.requireLocalFiles(
      inv,
      inv.hosts.filter((h) => h.db),
    )
    if (!this.flags.yes) {
      if (!process.stdin.isTTY) throw new UserError('promote changes the database topology: pass --yes (no terminal to ask on)')
      const {confirm} = await import('@inquirer/prompts')
      // Under --json, stdout carries only the envelope: the question goes to stderr.
      const context = this.jsonEnabled() ? {output: process.stderr} : undefined
      if (!(await confirm({message: `Make ${name} the primary instead of ${inv.mysql.primary}?`, default: false}, context)))
        throw new UserError('not confirmed; nothing was changed')
    }
    const cache = runnerCache(sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}))
    let result: PromoteResult
    try {
      result = await promote(inv, target, (h) => cache.get(h), password, {
        force: this.flags.force,
        timeoutMs: this.flags.timeout * 1000,
        step: (s) => this.say(s),
      })
    } finally {
      cache.closeAll()
    }
    const newReplicas = [...inv.mysql.replicas.filter((r) => r !== name), inv.mysql.primary]
    let inventoryUpdated = false
    if (this.flags.write) {
      await setPrimary(inv.file, name, newReplicas)
      inventoryUpdated = true
    }
    const primaryHost = target.address
    this.say(`\n${name} is the primary now (${primaryHost}); replicas: ${result.repointed.join(', ') || 'none'}.`)
    if (result.oldPrimaryStopped)
      this.say(
        `${result.oldPrimary}'s database did not answer: it was stopped and is fenced (it stays read-only when started again); make the inventory name ${name} the primary, then \`foobar provision\` repoints it.`,
      )
    else if (!result.oldPrimaryFenced)
      this.say(
        `${result.oldPrimary} was unreachable: when it comes back, its fence finds generation ${result.generation} on the others and it stays read-only.`,
      )
    this.say(
      inv.mysql.endpoint
        ? `The database endpoint on the web servers (127.0.0.1:${inv.mysql.endpoint.port}) follows the new writer on its own.`
        : `The application must send writes to ${name} (${primaryHost}:${inv.mysql.port}) instead of ${result.oldPrimary} (or use mysql.endpoint, which follows the writer).`,
    )
    if (inventoryUpdated) {
      this.say(
        `${inv.file} updated (mysql.primary: ${name}); run \`foobar provision\` to render the new roles (read_only, server configs).`,
      )
    } else {
      const update = `Update ${inv.file}: mysql.primary: ${name}, mysql.replicas: [${newReplicas.join(', ')}] (or run again with --write), then \`foobar provision\`.`
      this.say(update)
      this.warn(`the inventory still names ${result.oldPrimary} as the primary. ${update}`, true)
    }
    return {...result, inventoryUpdated}
  }
}
