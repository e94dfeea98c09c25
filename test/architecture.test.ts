import { describe, expect, it } from 'vitest'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative, dirname, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'

// The direction of dependencies (docs/architecture.md): a module imports only from lower levels, and only through
// the other folder's index.ts. The single same-level import allowed is routing -> messaging.
const LEVEL: Record<string, number> = {
  core: 0,
  sip: 1, media: 1, p2p: 1, store: 1,
  registrar: 2, users: 2, directory: 2,
  routing: 3, messaging: 3,
  cli: 4, web: 4, config: 4, '(root)': 4
}
const SAME_LEVEL_ALLOWED = new Set(['routing->messaging'])

const src = fileURLToPath(new URL('../src/', import.meta.url))

async function files (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await files(p))
    else if (p.endsWith('.ts')) out.push(p)
  }
  return out
}

function folderOf (file: string): string {
  const rel = relative(src, file).split(sep)
  return rel.length === 1 ? '(root)' : rel[0]!
}

describe('architecture', () => {
  it('imports follow the layer table', async () => {
    const violations: string[] = []
    for (const file of await files(src)) {
      const from = folderOf(file)
      expect(LEVEL[from], `unknown folder ${from}`).toBeDefined()
      const text = await readFile(file, 'utf8')
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2]!
        if (!spec.startsWith('.')) continue
        const target = resolve(dirname(file), spec)
        const to = folderOf(target)
        if (to === from) continue
        const where = `${relative(src, file)} -> ${spec}`
        // the composition level (cli, web, config and the root files) may use any module; root files have no index
        const composition = LEVEL[from] === 4
        if (!target.endsWith(`${sep}index.js`) && to !== '(root)' && from !== '(root)') violations.push(`${where}: import another folder only through its index`)
        if (LEVEL[to]! > LEVEL[from]!) violations.push(`${where}: ${from} (L${LEVEL[from]}) may not import ${to} (L${LEVEL[to]})`)
        if (!composition && LEVEL[to] === LEVEL[from] && !SAME_LEVEL_ALLOWED.has(`${from}->${to}`) && from !== '(root)' && to !== '(root)') violations.push(`${where}: same-level import ${from} -> ${to}`)
      }
    }
    expect(violations).toEqual([])
  })
})
