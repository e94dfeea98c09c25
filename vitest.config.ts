import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // integration and interop tests bind real sockets and spawn daemons: keep parallelism modest on small machines
    maxWorkers: 2,
    reporters: ['default']
  }
})
