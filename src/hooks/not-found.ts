import {type Hook, toConfiguredId} from '@oclif/core'
import {closest} from '../cli/suggest.js'

/**
 * `foobar provison`: names the command meant, and exits 127 (as a shell does for an unknown command). It never runs
 * the suggestion: a mistyped `provision` must not change hosts.
 */
const hook: Hook.CommandNotFound = async function (opts) {
  const visible = opts.config.commands.filter((c) => !c.hidden)
  const ids = [...visible.map((c) => c.id), ...visible.flatMap((c) => c.aliases)]
  const typed = toConfiguredId(opts.id, opts.config)
  const guess = closest(opts.id, ids)
  const topic = opts.config.findTopic(opts.id.split(':')[0]!)
  const help = `${opts.config.bin} help${topic ? ` ${toConfiguredId(topic.name, opts.config)}` : ''}`
  const hint = guess ? `Did you mean \`${opts.config.bin} ${toConfiguredId(guess, opts.config)}\`? ` : ''
  this.error(`\`${typed}\` is not a ${opts.config.bin} command. ${hint}\`${help}\` lists the commands.`, {exit: 127})
}

export default hook
