#!/usr/bin/env node
// Thin launcher: checks the Node version, then runs the CLI from dist/.
const [major] = process.versions.node.split('.').map(Number)
if (major < 22) {
  process.stderr.write(`m1node: Node.js 22 or newer is required (this is ${process.version}); run it through npm (npm start / npx m1node) so the bundled Node 24 is used\n`)
  process.exit(2)
}
const { main } = await import('../dist/cli/index.js')
await main(process.argv)
