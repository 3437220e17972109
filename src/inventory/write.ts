import {readFile, writeFile} from 'node:fs/promises'
import {parseDocument} from 'yaml'

/**
 * After a failover (`db promote --write`): sets `mysql.primary` and `mysql.replicas` (a flow list) in the inventory
 * file. Edits the YAML document in place, so comments, key order, quoting and the rest of the layout stay as they
 * were.
 */
export async function setPrimary(file: string, primary: string, replicas: string[]): Promise<void> {
  const doc = parseDocument(await readFile(file, 'utf8'))
  if (doc.errors.length > 0) throw new Error(`${file}: cannot update the inventory: ${doc.errors[0]!.message}`)
  doc.setIn(['mysql', 'primary'], primary)
  doc.setIn(['mysql', 'replicas'], doc.createNode(replicas, {flow: true}))
  await writeFile(file, doc.toString({flowCollectionPadding: false}))
}
