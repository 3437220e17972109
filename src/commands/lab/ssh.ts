import {spawnSync} from 'node:child_process'
import {Args} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {assertLabSupported, labPaths, readState, sshArgs} from '../../lab/index.js'
import {UserError} from '../../util/errors.js'

export default class LabSsh extends FoobarCommand<typeof LabSsh> {
  static summary = 'Enter a lab host over SSH as deploy (sudo works), or run one command there: lab ssh web1 -- COMMAND.'
  static description =
    "Uses the lab's key and its known_hosts (host keys checked). Without a command: an interactive shell. With one: its output, and its exit status as this command's (255: ssh itself failed)."
  static examples = ['<%= config.bin %> lab ssh web1', '<%= config.bin %> lab ssh web1 -- sudo journalctl -u nginx -n 20']
  static strict = false
  static enableJsonFlag = false
  static args = {host: Args.string({description: 'A lab host name (lab status lists them).', required: true})}

  async run(): Promise<void> {
    assertLabSupported()
    const paths = labPaths()
    const state = await readState(paths)
    const hosts = state?.status === 'up' ? state.hosts : []
    const host = hosts.find((h) => h.name === this.args.host)
    if (!host) {
      throw new UserError(
        state?.status === 'up' ? `no lab host named ${this.args.host}` : 'the lab is not up',
        hosts.length ? [`lab hosts: ${hosts.map((h) => h.name).join(', ')}`] : [],
        state?.status === 'up' ? [`${this.config.bin} lab status`] : [`${this.config.bin} lab up`],
      )
    }
    const dash = this.argv.indexOf('--')
    const command = dash === -1 ? [] : this.argv.slice(dash + 1)
    const tty = command.length === 0 && process.stdin.isTTY === true
    const r = spawnSync('ssh', [...(tty ? ['-t'] : []), ...sshArgs(paths, host.address), ...(command.length ? [command.join(' ')] : [])], {
      stdio: 'inherit',
    })
    if (r.error) throw r.error
    // The remote command's status is this command's (as with ssh itself): set, not thrown, so nothing more is printed.
    process.exitCode = r.status ?? 255
  }
}
