import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join} from 'node:path'
import type Handlebars from 'handlebars'
import {packagePath} from '../util/package.js'
import {assertSafeView} from './safe.js'

/** templates/ shipped with the package (the checkout's, or the installed package's). */
export const TEMPLATE_DIR = packagePath('templates')

let instance: typeof Handlebars | undefined

/** Handlebars, loaded on the first render (synchronously: it is CommonJS), not by every command that imports this. */
function handlebars(): typeof Handlebars {
  if (!instance) {
    const hb = (createRequire(import.meta.url)('handlebars') as typeof Handlebars).create()
    hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ' ') : ''))
    hb.registerHelper('eq', (a: unknown, b: unknown) => a === b)
    instance = hb
  }
  return instance
}

const cache = new Map<string, Handlebars.TemplateDelegate>()

/**
 * Renders templates/<name>.hbs. `strict` makes a missing key an error, `noEscape` keeps config syntax intact;
 * the view model is checked for values that could inject syntax before anything is rendered.
 */
export function renderTemplate(name: string, view: Record<string, unknown>): string {
  assertSafeView(view)
  let template = cache.get(name)
  if (!template) {
    const source = readFileSync(join(TEMPLATE_DIR, `${name}.hbs`), 'utf8')
    template = handlebars().compile(source, {strict: true, noEscape: true})
    cache.set(name, template)
  }
  return template(view)
}
