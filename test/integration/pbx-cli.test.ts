import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { runCli, startDaemon, stopDaemon } from '../helpers/cli.js'

/** The `server`, `login` and `password` lines `m1node trunk add` prints. */
function params (stdout: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const m of stdout.matchAll(/^ {2}(server|login|password) +(\S+)$/gm)) out[m[1]!] = m[2]!
  return out
}

describe('m1node trunk and did (store, then daemon)', () => {
  let dir: string
  let daemon: ChildProcess | undefined

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'm1node-pbx-cli-')) })
  afterEach(async () => {
    if (daemon != null) await stopDaemon(daemon, 'SIGKILL')
    daemon = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('adds, lists and removes trunks and DIDs; bad numbers exit 2', async () => {
    expect((await runCli(['init', '--data', dir, '--name', 'acme-node'])).code).toBe(0)
    expect((await runCli(['user', 'add', 'acme', '--password', 'pw-acme-1', '--data', dir])).code).toBe(0)
    const add = await runCli(['trunk', 'add', 'acme', '--name', 'office-pbx', '--data', dir])
    expect(add.code, add.stderr).toBe(0)
    const p = params(add.stdout)
    expect(p).toMatchObject({ server: 'acme-node', login: 'acme_office-pbx' })
    expect(p.password).toMatch(/^[A-Za-z0-9_-]{24}$/)
    expect(add.stdout).toMatch(/registration: REGISTER sip:acme-node/)
    expect((await runCli(['trunk', 'add', 'acme', '--name', 'office-pbx', '--data', dir])).code).toBe(2)
    expect((await runCli(['trunk', 'add', 'nobody', '--name', 'x', '--data', dir])).code).toBe(2)

    const bad = await runCli(['did', 'add', '5551234', 'acme', '--data', dir])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/E\.164/)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
    expect((await runCli(['did', 'add', '+15551234567', 'acme.201', '--data', dir])).stdout).toMatch(/\+15551234567 -> acme extension 201/)

    daemon = (await startDaemon(dir, { M1NODE_P2P_ENABLED: 'false' })).child
    const live = await runCli(['trunk', 'add', 'acme', '--name', 'legacy', '--static', '--allow', '127.0.0.9', '--target', '127.0.0.9:5070', '--data', dir])
    expect(live.code, live.stderr).toBe(0)
    expect(live.stdout).toMatch(/static trunk acme_legacy added\n {2}server +acme-node:\d+/)
    const list = await runCli(['trunk', 'list', 'acme', '--data', dir])
    expect(list.stdout).toMatch(/acme_office-pbx\tregister\t0 registered/)
    expect(list.stdout).toMatch(/acme_legacy\tstatic\tallow 127\.0\.0\.9 -> 127\.0\.0\.9:5070/)
    expect((await runCli(['did', 'list', '--data', dir])).stdout).toBe('+15551234567\tacme.201\n')
    expect((await runCli(['trunk', 'mode', 'acme', 'extensions', '--data', dir])).stdout).toMatch(/mode extensions, distribution failover/)
    expect((await runCli(['trunk', 'mode', 'acme', 'sideways', '--data', dir])).code).toBe(2)
    expect((await runCli(['trunk', 'rm', 'acme_legacy', '--data', dir])).code).toBe(0)
    expect((await runCli(['did', 'rm', '+15551234567', '--data', dir])).code).toBe(0)
    expect((await runCli(['did', 'rm', '+15551234567', '--data', dir])).code).toBe(2)
    expect((await runCli(['trunk', 'list', '--data', dir])).stdout).not.toMatch(/legacy/)
  }, 60_000)
})
