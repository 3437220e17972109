/*
 * The score auditors use, as a pure parser: ssh-audit's report (run from the control machine). Lynis' hardening
 * index (run on the host) is read from its report in lynis.ts.
 */

export interface SshAuditResult {
  /** The banner line, proof that ssh-audit reached sshd. */
  banner?: string
  fail: string[]
  warn: string[]
  /** Notes not counted, with why. */
  ignored: string[]
}

/**
 * kex-strict-s-v00@openssh.com is not an algorithm but OpenSSH's Terrapin countermeasure (CVE-2023-48795),
 * backported to Debian 12's OpenSSH and always announced; ssh-audit 2.5.0 predates it and calls it "unknown".
 * It cannot be switched off, and switching it off would be worse.
 */
const NOT_COUNTED = [{algorithm: /^kex-strict-[cs]-v00@openssh\.com$/, note: /unknown algorithm/}]

/** Parses `ssh-audit -n` text output (2.5.0's JSON has no notes): each `[fail]` and `[warn]` note of an algorithm. */
export function parseSshAudit(text: string): SshAuditResult {
  const out: SshAuditResult = {fail: [], warn: [], ignored: []}
  let current = ''
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\x1b\[[0-9;]*m/g, '')
    const banner = /^\(gen\) banner: (.*)$/.exec(line)
    if (banner) out.banner = banner[1]!.trim()
    const head = /^\((\w+)\) (\S+)/.exec(line)
    if (head) current = `${head[1]} ${head[2]}`
    // A known vulnerability of the server's version is a failure whatever its algorithms.
    if (head?.[1] === 'cve') out.fail.push(line.trim())
    const note = /(?:--|`-) \[(fail|warn)\] (.*)$/.exec(line)
    if (!note || !current) continue
    const [, level, text_] = note
    const what = `${current}: ${text_!.trim()}`
    const algorithm = current.split(' ')[1]!
    if (NOT_COUNTED.some((n) => n.algorithm.test(algorithm) && n.note.test(text_!))) out.ignored.push(what)
    else out[level as 'fail' | 'warn'].push(what)
  }
  return out
}
