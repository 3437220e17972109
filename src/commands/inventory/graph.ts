import {spawnSync} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {Flags} from '@oclif/core'
import {FoobarCommand} from '../../cli/base.js'
import {firewallRules} from '../../components/firewall/rules.js'
import {STACK} from '../../components/index.js'
import {hostPorts} from '../../engine/desired.js'
import {type FlowGraph, flowGraph, toDot, toMermaid} from '../../graph/index.js'
import {loadInventory} from '../../inventory/index.js'
import {UserError} from '../../util/errors.js'

export default class InventoryGraph extends FoobarCommand<typeof InventoryGraph> {
  static summary = 'Draw who may talk to whom: the hosts by role and every flow their firewalls allow (source -> host, port).'
  static description =
    'From the same rules `firewall plan` renders (SSH from the admin networks, each component’s ports, extra ports); the address foobar connects from is left out. Touches no host. SVG needs Graphviz (`apt install graphviz`); dot and mermaid are text.'
  static examples = ['<%= config.bin %> inventory graph --format svg --out stack.svg', '<%= config.bin %> inventory graph --format mermaid']
  static flags = {
    format: Flags.string({summary: 'svg (Graphviz), dot, or mermaid.', options: ['svg', 'dot', 'mermaid'], default: 'dot'}),
    out: Flags.string({char: 'o', summary: 'Write to this file instead of stdout.'}),
  }

  async run(): Promise<FlowGraph> {
    const inv = await loadInventory(this.flags.inventory)
    const graph = flowGraph(inv, (h) => firewallRules(h, hostPorts(STACK, inv, h)))
    const title = `${inv.site.domain}: allowed flows`
    let text = this.flags.format === 'mermaid' ? toMermaid(graph) : toDot(graph, title)
    if (this.flags.format === 'svg') {
      const dot = spawnSync('dot', ['-Tsvg'], {input: text, encoding: 'utf8'})
      if (dot.error)
        throw new UserError(
          '--format svg needs Graphviz’s dot, which is not installed',
          [],
          ['apt install graphviz', '--format dot or --format mermaid'],
        )
      if (dot.status !== 0) throw new Error(`dot -Tsvg failed: ${dot.stderr.trim()}`)
      text = dot.stdout
    }
    if (this.flags.out) writeFileSync(this.flags.out, text)
    else if (!this.jsonEnabled()) process.stdout.write(text)
    return graph
  }
}
