import type {TestProject} from 'vitest/node'
import {down, labPaths, labSupported, leftovers, readState, up} from '../../src/lab/index.js'
import {labSpec} from './support/lab.js'

declare module 'vitest' {
  export interface ProvidedContext {
    /** The lab is up for this run (root on Linux); lab tests skip otherwise. */
    labUp: boolean
  }
}

/** Teardown: purge host state, then prove nothing is left (process, mount, netns, link), loudly if something is. */
async function tearDown(): Promise<void> {
  const started = Date.now()
  try {
    await down({purge: true})
    const left = await leftovers()
    if (left.length > 0) throw new Error(`lab teardown left these behind:\n  ${left.join('\n  ')}`)
  } catch (error) {
    console.error(`LAB TEARDOWN FAILED: ${(error as Error).message}`)
    // vitest reports an error thrown by a global teardown but still exits 0.
    process.exitCode = 1
    throw error
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  console.log(`lab torn down in ${seconds} s: no process, mount, namespace or bridge left`)
}

/** One lab for the whole run, brought up through the library (not the CLI), always torn down. */
export default async function setup(project: TestProject) {
  if (!labSupported()) {
    console.log('lab tests skipped: need root on Linux')
    project.provide('labUp', false)
    return
  }
  try {
    // A lab found up is someone else's (a developer's, a benchmark's): its hosts may be provisioned, hardened, with
    // state this run knows nothing of, and the files would fail against it in confusing ways (stop 42: 14 failures,
    // all of that). The suite purges the lab when it ends anyway; it starts from bare hosts too.
    const found = await readState(labPaths())
    if (found && found.status !== 'down') {
      const purged = await down({purge: true})
      console.log(
        `lab: a lab was up (${found.hosts.map((h) => h.name).join(', ')}): taken down with its disks first, so these tests start from bare hosts (${purged.seconds.toFixed(1)} s)`,
      )
    }
    const result = await up(await labSpec(), {log: (line) => console.log(`lab: ${line}`)})
    const image = result.image?.built ? `, image built in ${result.image.seconds.toFixed(0)} s` : ''
    console.log(`lab up in ${result.seconds.toFixed(1)} s (${result.hosts.map((h) => h.name).join(', ')}${image})`)
  } catch (error) {
    await tearDown().catch((e: Error) => console.error(e.message))
    throw error
  }
  project.provide('labUp', true)
  return tearDown
}
