import { afterEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { runCli, startDaemon, stopDaemon } from '../../helpers/cli.js'

// three `m1node start` processes (the built dist/) bootstrapped to each other resolve each other's logins via the CLI
describe('three daemons', () => {
  const children: ChildProcess[] = []
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map(async c => await stopDaemon(c)))
    await Promise.all(dirs.splice(0).map(async d => await rm(d, { recursive: true, force: true })))
  })

  it('resolve each other\'s logins with m1node resolve', async () => {
    const names = ['daemon-a', 'daemon-b', 'daemon-c']
    for (const n of names) dirs.push(await mkdtemp(join(tmpdir(), `m1node-${n}-`)))
    // users are written to each store before its daemon starts
    for (const [i, n] of names.entries()) {
      const r = await runCli(['user', 'add', `user-${n.slice(-1)}`, '-p', 'secret123', '--listed', '--display', `User ${n.slice(-1).toUpperCase()} of ${n}`, '--data', dirs[i]!], { env: { M1NODE_NODE_NAME: n } })
      expect(r.code, r.stderr).toBe(0)
    }
    const env = (n: string, bootstrap: string[]): Record<string, string> => ({ M1NODE_NODE_NAME: n, M1NODE_P2P_BOOTSTRAP: bootstrap.join(',') })
    const a = await startDaemon(dirs[0]!, env(names[0]!, []))
    children.push(a.child)
    const status = JSON.parse((await runCli(['status', '--json', '--data', dirs[0]!])).stdout) as { p2p: string[] }
    const boot = status.p2p.filter(x => x.includes('/127.0.0.1/'))
    expect(boot.length).toBeGreaterThan(0)
    const b = await startDaemon(dirs[1]!, env(names[1]!, boot))
    children.push(b.child)
    const c = await startDaemon(dirs[2]!, env(names[2]!, boot))
    children.push(c.child)

    const resolveUntil = async (dir: string, name: string, expectText: string): Promise<string> => {
      const deadline = Date.now() + 20_000
      let last = ''
      while (Date.now() < deadline) {
        const r = await runCli(['resolve', name, '--data', dir])
        last = r.stdout + r.stderr
        if (r.code === 0 && r.stdout.includes(expectText)) return r.stdout
        await new Promise(resolve => setTimeout(resolve, 500))
      }
      throw new Error(`resolve ${name} never showed ${expectText}: ${last}`)
    }
    expect(await resolveUntil(dirs[0]!, 'user-b', 'user-b@daemon-b')).toContain('peer id')
    expect(await resolveUntil(dirs[1]!, 'user-c@daemon-c', 'user-c@daemon-c')).toContain('daemon-c')
    expect(await resolveUntil(dirs[2]!, 'user-a', 'user-a@daemon-a')).toContain('daemon-a')

    const peers = await runCli(['peers', '--json', '--data', dirs[0]!])
    expect((JSON.parse(peers.stdout) as { peers: unknown[] }).peers.length).toBeGreaterThanOrEqual(2)
    const search = await runCli(['search', 'user', '--data', dirs[1]!])
    expect(search.code).toBe(0)
    expect(search.stdout).toContain('user-b@daemon-b')
    const missing = await runCli(['resolve', 'nobody-here', '--data', dirs[1]!])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/no node record|no login record/)
  }, 60_000)
})
