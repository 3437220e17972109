/**
 * CLI habits (issue 21, item 5): a mistyped command or flag names what was meant; shell completion for bash and zsh
 * completes commands, subcommands and flags. All through the built CLI, as a user types it.
 */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, test} from 'vitest'
import {closest} from '../../src/cli/suggest.js'
import {runCli} from './support/run-cli.js'

describe('closest', () => {
  const commands = ['provision', 'plan', 'verify', 'render', 'firewall:apply', 'firewall:plan', 'db:promote']
  test.each([
    ['provison', 'provision'],
    ['verfy', 'verify'],
    ['prov', 'provision'],
    ['firewall:aply', 'firewall:apply'],
    ['db:promot', 'db:promote'],
  ])('%s → %s', (typed, meant) => expect(closest(typed, commands)).toBe(meant))
  test('nothing close, or an ambiguous prefix: no guess', () => {
    expect(closest('xyzzy', commands)).toBeUndefined()
    expect(closest('firewall:', commands)).toBeUndefined()
  })
})

describe('did you mean', () => {
  test('a mistyped command: exit 127, the command meant, nothing run', async () => {
    const r = await runCli(['provison', '--yes'])
    expect(r.code).toBe(127)
    expect(r.stderr.replace(/\s*›\s*/g, ' ')).toContain('`provison` is not a foobar command. Did you mean `foobar provision`?')
    expect(r.stdout).toBe('')
  })
  test('a mistyped subcommand names the topic help', async () => {
    const r = await runCli(['firewall', 'aply'])
    expect(r.code).toBe(127)
    const text = r.stderr.replace(/\s*›\s*/g, ' ')
    expect(text).toContain('Did you mean `foobar firewall apply`?')
    expect(text).toContain('`foobar help firewall` lists the commands')
  })
  test('nothing close: no guess, still exit 127', async () => {
    const r = await runCli(['xyzzy'])
    expect(r.code).toBe(127)
    expect(r.stderr).not.toContain('Did you mean')
  })
  test('a mistyped flag: exit 2 and the flag meant, for humans and in --json', async () => {
    const human = await runCli(['plan', '--limt', 'web1'])
    expect(human.code).toBe(2)
    expect(human.stderr).toContain('Nonexistent flag: --limt (did you mean --limit?)')
    const json = await runCli(['plan', '--jsn', '--detailed-exitcod', '--json'])
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stdout).error.message).toBe(
      'Nonexistent flags: --jsn, --detailed-exitcod (did you mean --json for --jsn, --detailed-exitcode for --detailed-exitcod?)',
    )
  })
})

describe('shell completion', () => {
  const cache = mkdtempSync(join(tmpdir(), 'foobar-ac-'))
  const env = {XDG_CACHE_HOME: cache}

  /** What bash's completion offers for the words typed so far (a trailing space: the next word). */
  function complete(script: string, line: string): string[] {
    const out = execFileSync(
      'bash',
      [
        '-c',
        'source "$0"; read -ra COMP_WORDS <<< "$1"; [[ "$1" == *" " ]] && COMP_WORDS+=(""); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); COMP_LINE="$1"; _foobar_autocomplete; printf "%s\\n" "${COMPREPLY[@]}"',
        script,
        line,
      ],
      {encoding: 'utf8'},
    )
    return out.split('\n').filter(Boolean)
  }

  test('bash: commands, subcommands and flags complete', async () => {
    const setup = await runCli(['autocomplete', 'bash'], env)
    expect(setup.code, setup.stderr).toBe(0)
    expect(setup.stdout).toContain('foobar autocomplete script bash')
    const script = join(cache, 'foobar', 'autocomplete', 'functions', 'bash', 'foobar.bash')
    expect(complete(script, 'foobar prov')).toEqual(['provision'])
    expect(complete(script, 'foobar firewall a')).toEqual(['apply'])
    expect(complete(script, 'foobar db ').sort()).toEqual(['promote', 'status'])
    expect(complete(script, 'foobar provision --lim')).toEqual(['--limit'])
  })

  test('zsh: a completion function naming every command', async () => {
    const r = await runCli(['autocomplete', 'zsh'], env)
    expect(r.code, r.stderr).toBe(0)
    const fn = readFileSync(join(cache, 'foobar', 'autocomplete', 'functions', 'zsh', '_foobar'), 'utf8')
    expect(fn).toContain('#compdef foobar')
    for (const c of ['provision', 'verify', 'firewall', 'promote']) expect(fn).toContain(c)
  })
})
