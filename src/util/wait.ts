export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Polls `probe` every `everyMs` until it returns a value other than undefined, or the time runs out; then throws
 * with `what` and the last reason `probe` gave (through `why`).
 */
export async function waitFor<T>(
  what: string,
  probe: (why: (reason: string) => void) => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 1000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    const v = await probe((reason) => (last = reason))
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000}s${last ? ` (${last})` : ''}`)
    await sleep(everyMs)
  }
}
