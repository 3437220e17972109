/** Quote one argument for a POSIX shell: the only way values enter remote commands. */
export function shq(value: string | number): string {
  const s = String(value)
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s
  return `'${s.replace(/'/g, `'\\''`)}'`
}
