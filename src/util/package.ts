import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The installed package's root (the checkout, or where `npm install -g` put it): templates, inventories, bin. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

/** A file shipped with the package. */
export const packagePath = (...parts: string[]) => join(PACKAGE_ROOT, ...parts)
