import {createHash} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'
import type Handlebars from 'handlebars'
// The runtime alone (no compiler), for the templates precompiled by the build. A static import, so that the build's
// bundle carries it (one module instead of ~20 files read from node_modules: ~5 ms against 22-49 ms on this
// machine, issue 20); the compiler below stays in node_modules, loaded only when a template is not precompiled.
import HandlebarsRuntime from 'handlebars/runtime.js'
import {packagePath} from '../util/package.js'
import {assertSafeView} from './safe.js'

/** templates/ shipped with the package (the checkout's, or the installed package's). */
export const TEMPLATE_DIR = packagePath('templates')

let instance: typeof Handlebars | undefined
let runtimeInstance: typeof Handlebars | undefined

function withHelpers(hb: typeof Handlebars): typeof Handlebars {
  hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ' ') : ''))
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b)
  return hb
}

const require = createRequire(import.meta.url)

/** Handlebars, loaded on the first render (synchronously: it is CommonJS), not by every command that imports this. */
function handlebars(): typeof Handlebars {
  instance ??= withHelpers((require('handlebars') as typeof Handlebars).create())
  return instance
}

/** Its runtime alone (no compiler), for the templates precompiled by the build. */
function runtime(): typeof Handlebars {
  runtimeInstance ??= withHelpers((HandlebarsRuntime as unknown as typeof Handlebars).create())
  return runtimeInstance
}

type Precompiled = Record<string, {sha256: string; spec: Parameters<typeof Handlebars.template>[0]}>
let precompiled: Precompiled | undefined

/**
 * What `npm run build` precompiled (scripts/precompile-templates.mjs), next to this module in dist/; nothing when run
 * from the sources (the tests) or when FOOBAR_COMPILE_TEMPLATES is set (to compare both ways).
 */
function precompiledTemplates(): Precompiled {
  if (precompiled) return precompiled
  try {
    precompiled = process.env.FOOBAR_COMPILE_TEMPLATES ? {} : (require('./templates.precompiled.cjs') as Precompiled)
  } catch {
    precompiled = {}
  }
  return precompiled
}

/** How every template is compiled: here, and by the build's precompile step (scripts/precompile-templates.mjs). */
export const COMPILE_OPTIONS = {strict: true, noEscape: true} as const

const cache = new Map<string, Handlebars.TemplateDelegate>()

/**
 * Renders templates/<name>.hbs. `strict` makes a missing key an error, `noEscape` keeps config syntax intact;
 * the view model is checked for values that could inject syntax before anything is rendered. The build's
 * precompiled template is used when its source is the file's, byte for byte; otherwise the file is compiled.
 */
export function renderTemplate(name: string, view: Record<string, unknown>): string {
  assertSafeView(view)
  let template = cache.get(name)
  if (!template) {
    const source = readFileSync(join(TEMPLATE_DIR, `${name}.hbs`), 'utf8')
    const built = precompiledTemplates()[name]
    template =
      built && built.sha256 === createHash('sha256').update(source).digest('hex')
        ? runtime().template(built.spec)
        : handlebars().compile(source, COMPILE_OPTIONS)
    cache.set(name, template)
  }
  return template(view)
}
