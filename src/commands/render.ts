import {Flags} from '@oclif/core'
import {FoobarCommand} from '../cli/base.js'
import {UserError} from '../util/errors.js'
import {limitFlag} from '../cli/run-flags.js'
import {loadInventory} from '../inventory/index.js'
import {type RenderedFile, renderToDirectory} from '../cli/render-files.js'

export default class Render extends FoobarCommand<typeof Render> {
  static summary = 'Render every config file for every host into DIR/<host>/<path>, without touching any host.'
  static examples = [
    '<%= config.bin %> render -i inventories/foobar.yml --out /tmp/foobar-render',
    '<%= config.bin %> render --host web1 --out out',
  ]

  static flags = {
    out: Flags.string({char: 'o', summary: 'Output directory.', required: true}),
    host: Flags.string({summary: 'Only this host (same as --limit HOST).', multiple: true}),
    limit: limitFlag,
  }

  async run(): Promise<{out: string; files: RenderedFile[]}> {
    const inv = await loadInventory(this.flags.inventory)
    const limit = [...(this.flags.limit ?? []), ...(this.flags.host ?? [])]
    const hosts = this.limitHosts(inv, limit)
    if (hosts.length === 0) throw new UserError('no host matches --limit/--host')
    const files = await renderToDirectory(inv, hosts, this.flags.out)
    for (const f of files) this.say(`${f.host}\t${f.mode}\t${f.path}`)
    this.say(`\n${files.length} files for ${hosts.length} hosts in ${this.flags.out}`)
    return {out: this.flags.out, files}
  }
}
