import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {connectFlags, limitFlag} from '../cli/run-flags.js'
import {type ExecResult, execOnHosts} from '../exec/index.js'
import {loadInventory} from '../inventory/index.js'
import {sshTransport} from '../remote/connection.js'
import {ExitCode, UserError} from '../util/errors.js'

export default class ExecCommand extends FoobarCommand<typeof ExecCommand> {
  static summary = 'Run a shell command on the selected hosts; print each host’s output and exit status.'
  static description =
    'The command is everything after `--`, run by the login shell of each host, as root (through `sudo -n` for a non-root SSH user) unless --no-root. Hosts run in parallel (--concurrency); each host’s output is printed as it finishes. Exit 0 when the command exited 0 everywhere, 3 when it failed on some hosts, 1 on all. It changes nothing by itself: what it runs is up to you.'
  static examples = [
    "foobar exec --limit 'web*' -- systemctl is-active nginx",
    'foobar exec --limit db --json -- mysql -e "SHOW SLAVE STATUS\\G"',
  ]
  static strict = false
  static flags = {
    ...connectFlags,
    limit: limitFlag,
    root: Flags.boolean({summary: 'Run as root (sudo -n for a non-root SSH user).', default: true, allowNo: true}),
    timeout: Flags.integer({summary: 'Give up on a host after SECONDS (its result says so).', default: 600, min: 1}),
  }

  async run(): Promise<{command: string; hosts: ExecResult[]}> {
    const dash = this.argv.indexOf('--')
    const words = dash === -1 ? [] : this.argv.slice(dash + 1)
    if (words.length === 0 || words.join(' ').trim() === '')
      throw new UserError('no command given: put it after `--`', [], ['foobar exec --limit web1 -- uptime'])
    const command = words.join(' ')
    const inv = await loadInventory(this.flags.inventory)
    for (const w of inv.warnings ?? []) this.warn(w)
    const hosts = this.limitHosts(inv, this.flags.limit)
    await this.requireLocalFiles(inv, hosts)
    const results = await execOnHosts(hosts, command, {
      transport: sshTransport({acceptNewHostKeys: this.flags['accept-new-host-keys']}),
      concurrency: this.flags.concurrency,
      root: this.flags.root,
      timeoutMs: this.flags.timeout * 1000,
      onResult: (r) => {
        if (this.jsonEnabled()) return
        const status = r.error ? `ERROR ${r.error}` : `exit ${r.code}`
        this.log(`== ${r.host}: ${status} (${r.seconds.toFixed(1)} s)`)
        if (r.stdout) process.stdout.write(r.stdout.endsWith('\n') ? r.stdout : `${r.stdout}\n`)
        if (r.stderr) process.stderr.write(r.stderr.endsWith('\n') ? r.stderr : `${r.stderr}\n`)
      },
    })
    const result = {command, hosts: results}
    const failed = results.filter((r) => r.error !== undefined || r.code !== 0)
    if (failed.length > 0) {
      this.outcome(
        result,
        failed.length === results.length ? ExitCode.failure : ExitCode.partial,
        `the command failed on ${failed.map((r) => r.host).join(', ')}`,
        {failed: Object.fromEntries(failed.map((r) => [r.host, r.error ?? `exit ${r.code}`]))},
      )
    }
    return result
  }
}
