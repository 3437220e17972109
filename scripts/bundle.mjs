// Part of `npm run build`, after tsc and the templates' precompile: the commands of dist/ bundled by esbuild into
// dist/app/ (one file a command, the code they share in chunks), which the CLI runs (package.json's oclif.commands).
// Node then reads and compiles a few dozen files for a command instead of a few hundred: about 0.2 s less at every
// start on this machine (bench/cli-start.js). dist/'s own modules stay for the build scripts and the benches.
//
// Left outside the bundle, loaded from node_modules as before: oclif (it finds its plugins and config by its package's
// path), ssh2 (optional native parts), the ACME client and the prompts (loaded only by the commands that use them),
// and Handlebars' compiler (loaded by templates.ts through createRequire when a template is not precompiled). The
// Handlebars runtime the precompiled templates run on (next to the chunks) is bundled.
import {copyFileSync, readdirSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import {build} from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const out = join(dist, 'app')

const entries = ['commands', 'hooks'].flatMap((d) =>
  readdirSync(join(dist, d), {recursive: true})
    .map(String)
    .filter((f) => f.endsWith('.js'))
    .map((f) => join(dist, d, f)),
)

await build({
  entryPoints: entries,
  outdir: out,
  outbase: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@oclif/*', '@inquirer/*', 'ssh2', 'cpu-features', 'acme-client', './templates.precompiled.cjs'],
  // CommonJS dependencies inside an ES module bundle call require() for Node's built-ins.
  banner: {js: "import {createRequire as __foobarRequire} from 'node:module'; const require = __foobarRequire(import.meta.url);"},
  logLevel: 'warning',
})
// templates.ts requires it from its own folder: in the bundle that is the chunks' folder.
copyFileSync(join(dist, 'render', 'templates.precompiled.cjs'), join(out, 'templates.precompiled.cjs'))
console.log(`bundled ${entries.length} entry points into ${relative(root, out)}`)
