import {appendFileSync} from 'node:fs'
import {relative} from 'node:path'
import type {SerializedError} from 'vitest'
import type {Reporter, TestModule} from 'vitest/node'

/**
 * Prints the plain closing line CI reads: `N passed, N failed, N skipped, N errors`. An error is what fails a run
 * without failing a test: an unhandled error or rejection, a file that does not load, a failing `beforeAll` or
 * `afterAll`. Each is also named on a line of its own (`error: FILE: MESSAGE`) after the counts, so the last lines
 * of a run say why it failed even when every test passed. With FOOBAR_TEST_SUMMARY set (scripts/test.sh, which runs
 * the unit and lab projects one after the other), the counts are also added to that file as a line
 * `passed failed skipped errors`, and each error as a line starting `error:`, for the closing lines of both runs.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    const errors: string[] = []
    for (const mod of testModules) {
      for (const test of mod.children.allTests()) {
        const state = test.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      // Errors of the file itself (its import, or a hook outside any test): the tests can all pass.
      const file = relative(process.cwd(), mod.moduleId)
      for (const err of mod.errors()) errors.push(`error: ${file}: ${firstLine(err)}`)
    }
    for (const err of unhandledErrors) errors.push(`error: unhandled: ${firstLine(err)}`)
    const named = errors.map((e) => `${e}\n`).join('')
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped, ${errors.length} errors\n${named}`)
    const summary = process.env.FOOBAR_TEST_SUMMARY
    if (summary) appendFileSync(summary, `${passed} ${failed} ${skipped} ${errors.length}\n${named}`)
  }
}

function firstLine(err: SerializedError): string {
  const text = `${err.name ?? 'Error'}: ${err.message ?? String(err)}`
  return text.split('\n')[0].slice(0, 300)
}
