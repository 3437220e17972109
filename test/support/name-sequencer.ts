import {BaseSequencer, type TestSpecification} from 'vitest/node'

/**
 * Test files in name order. The lab files share one lab and build on each other's state (00 boots and checks it,
 * 10 provisions bare hosts, ... 99 tears down and up again): vitest's default order (by past duration) would
 * shuffle them.
 */
export default class NameSequencer extends BaseSequencer {
  async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => a.moduleId.localeCompare(b.moduleId))
  }
}
