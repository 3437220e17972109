import type {Host, Inventory} from '../inventory/index.js'
import type {TlsMaterial} from './tls/material.js'

/** A file as it must be on the host. */
export interface DesiredFile {
  path: string
  content: string
  mode: number
  owner: string
  group: string
  /** Secret content: never shown in diffs or output. */
  secret?: boolean
  /** Services to reload when this file changes. */
  notify?: string[]
  /**
   * The daemon's own checker. `candidate`: run on the temp file (`{}` is replaced by its path) before it is moved
   * into place. `config`: the checker reads the whole config, so it runs with the file in place and the previous
   * file is put back if it fails.
   */
  validate?: {mode: 'candidate' | 'config'; command: string}
}

export interface ServiceSpec {
  name: string
  /** How to apply a config change: `reload` where the daemon supports it (hitless), else `restart`. */
  onChange: 'reload' | 'restart'
  /** A shell snippet that exits 0 when the service really works (not just "active"). */
  health?: string
  /** Left alone in a container (plan, apply and verify), for this reason: e.g. a daemon of the host machine's hardware. */
  notInContainer?: string
}

/** Everything one component wants on one host. */
export interface ComponentState {
  packages: string[]
  files: DesiredFile[]
  /** Files that must not exist (e.g. a distribution default that would conflict). */
  absent: string[]
  services: ServiceSpec[]
}

export interface RenderContext {
  inventory: Inventory
  host: Host
  /** Certificates and keys; absent when only rendering configs (`foobar render`). */
  material?: TlsMaterial
  /** The address foobar connects from, as the host sees it (always allowed to reach SSH). */
  controlAddress?: string
}

export interface Component {
  name: string
  appliesTo(host: Host): boolean
  desired(ctx: RenderContext): ComponentState
}

export const emptyState = (): ComponentState => ({packages: [], files: [], absent: [], services: []})

export const file = (path: string, content: string, extra: Partial<DesiredFile> = {}): DesiredFile => ({
  path,
  content,
  mode: 0o644,
  owner: 'root',
  group: 'root',
  ...extra,
})
