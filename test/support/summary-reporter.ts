import {appendFileSync} from 'node:fs'
import type {Reporter, TestModule} from 'vitest/node'

/**
 * Prints the plain closing line CI reads: `N passed, N failed, N skipped`. With FOOBAR_TEST_SUMMARY set (scripts/test.sh,
 * which runs the unit and lab projects one after the other), the counts are also added to that file as a line
 * `passed failed skipped`, for the closing line of both runs.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`)
    const file = process.env.FOOBAR_TEST_SUMMARY
    if (file) appendFileSync(file, `${passed} ${failed} ${skipped}\n`)
  }
}
