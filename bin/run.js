#!/usr/bin/env node
import {readFileSync} from 'node:fs'

const {name, version, engines} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
// `foobar --version` answers without loading oclif (most of a small machine's start-up time): the line oclif's
// own --version prints (its config's userAgent), from package.json.
if (process.argv.length === 3 && process.argv[2] === '--version') {
  process.stdout.write(`${name}/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else {
  // oclif checks the Node version against its own package's engines with semver, loaded for that alone (30-40 ms
  // of every start on this machine, issue 20). foobar checks its own engines (">=MAJOR.MINOR") and turns oclif's off.
  const need = /^>=(\d+)\.(\d+)/.exec(engines?.node ?? '')
  const [major, minor] = process.versions.node.split('.').map(Number)
  if (need && (major < Number(need[1]) || (major === Number(need[1]) && minor < Number(need[2])))) {
    process.emitWarning(`Node version must be ${engines.node} to use foobar. Current node version: ${process.versions.node}`)
  }
  process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1'
  const {execute} = await import('@oclif/core')
  await execute({dir: import.meta.url})
}
