/*
 * Second line of defence behind the inventory schema: a value that reaches a config file or a shell command must
 * not be able to change its structure. Templates hold the syntax (quotes, braces, semicolons); values never do.
 */

const CONFIG_UNSAFE = /[\u0000-\u001f\u007f;{}"'`$\\<>|&]/

/** Throws if any string in the view model could break out of its place in a config file. */
export function assertSafeView(view: unknown, path = 'view'): void {
  // Fast path without building a path string per value (views hold ~10^5 strings at 1,000 hosts).
  if (isSafe(view)) return
  reportUnsafe(view, path)
  throw new Error(`unsafe value in ${path}`)
}

function isSafe(view: unknown): boolean {
  if (typeof view === 'string') return !CONFIG_UNSAFE.test(view)
  if (Array.isArray(view)) return view.every(isSafe)
  if (view && typeof view === 'object') {
    for (const k of Object.keys(view)) if (!isSafe((view as Record<string, unknown>)[k])) return false
  }
  return true
}

function reportUnsafe(view: unknown, path: string): void {
  if (typeof view === 'string') {
    if (CONFIG_UNSAFE.test(view)) throw new Error(`unsafe value at ${path}: ${JSON.stringify(view)} (control characters or config syntax)`)
    return
  }
  if (Array.isArray(view)) {
    view.forEach((v, i) => reportUnsafe(v, `${path}[${i}]`))
    return
  }
  if (view && typeof view === 'object') {
    for (const [k, v] of Object.entries(view)) reportUnsafe(v, `${path}.${k}`)
  }
}
