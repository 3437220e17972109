import type {Inventory} from '../../inventory/index.js'
import {renderTemplate} from '../../render/templates.js'
import {galeraArbitrator, galeraMembers, isGalera} from '../galera/cluster.js'

/** The alert rules, thresholds and durations from the inventory (checked by `promtool check rules` before they are used). */
export function alertRules(inv: Inventory): string {
  // Galera: every member takes writes (no MultipleWriters), and no replication threads; its own state instead.
  const galera = isGalera(inv) ? {size: galeraMembers(inv).length + (galeraArbitrator(inv) ? 1 : 0)} : undefined
  return renderTemplate('alerting/rules.yml', {domain: inv.site.domain, r: inv.alerting.rules, galera})
}

/** The names of the rules in a rendered rule file, in order. */
export const ruleNames = (rules: string): string[] => [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!)
