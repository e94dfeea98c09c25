import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // integration and interop tests bind real sockets and spawn daemons: keep parallelism modest on small machines
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'main', include: ['test/**/*.test.ts'], exclude: ['test/nat/**'] } },
      // the NAT lab files share one set of network namespaces (test/nat/lab.sh): one file at a time
      { extends: true, test: { name: 'nat', include: ['test/nat/**/*.test.ts'], fileParallelism: false } }
    ]
  }
})
