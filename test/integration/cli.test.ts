import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChildProcess } from 'node:child_process'
import { runCli, startDaemon, stopDaemon } from '../helpers/cli.js'
import { SipTestUa } from '../helpers/sip-ua.js'
import { Phone } from '../helpers/phone.js'

async function sipPort (dataDir: string, transport: string): Promise<number> {
  const r = await runCli(['status', '--json', '--data', dataDir])
  const s = JSON.parse(r.stdout) as { sip: Array<{ transport: string, port: number }> }
  return s.sip.find(a => a.transport === transport)!.port
}

describe('m1node CLI and daemon (separate processes)', () => {
  let dir: string
  let daemon: ChildProcess | undefined

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'm1node-cli-')) })
  afterEach(async () => {
    if (daemon != null) await stopDaemon(daemon, 'SIGKILL')
    daemon = undefined
    await rm(dir, { recursive: true, force: true })
  })

  it('init creates identity, token and config; a second init needs --force', async () => {
    const r = await runCli(['init', '--data', dir, '--name', 'acme-node'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/acme-node/)
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'control.token'))).mode & 0o777).toBe(0o600)
    expect(await readFile(join(dir, 'config.toml'), 'utf8')).toMatch(/^name = "acme-node"$/m)
    const again = await runCli(['init', '--data', dir])
    expect(again.code).toBe(2)
    expect(again.stderr.trim().split('\n')).toHaveLength(1)
  })

  it('bad input gets one line naming the problem and exit code 2', async () => {
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['user', 'add', 'Bad Login!', '--password', 'pw-123', '--data', dir], {}, /login/],
      [['user', 'frobnicate', '--data', dir], {}, /unknown command/],
      [['start', '--data', dir, '--bogus'], {}, /unknown option/],
      [['status', '--data', dir], { M1NODE_SIP_UDP_PORT: 'abc' }, /sip\.udp_port/],
      [['status', '--data', dir], { M1NODE_REGISTRAR_MIN_EXPIRES: '0' }, /registrar\.min_expires/],
      [['start', '--data', dir, '--config', join(dir, 'missing.toml')], {}, /missing\.toml/]
    ]
    for (const [args, env, re] of cases) {
      const r = await runCli(args, { env })
      expect(r.code, args.join(' ')).toBe(2)
      const lines = r.stderr.trim().split('\n')
      expect(lines, r.stderr).toHaveLength(1)
      expect(lines[0]).toMatch(re)
    }
    await writeFile(join(dir, 'bad.toml'), '[sip]\nudp_port = "x"\n[nonsense]\n')
    const r = await runCli(['start', '--data', dir, '--config', join(dir, 'bad.toml')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^m1node: (sip\.udp_port|nonsense)/)
  })

  it('manages users with the daemon down and up; a phone then registers', async () => {
    expect((await runCli(['user', 'add', 'bob', '--data', dir], { input: 'pw-bob-1\n' })).code).toBe(0)
    daemon = (await startDaemon(dir)).child
    const add = await runCli(['user', 'add', 'alice', '--password', 'pw-alice', '--name', 'Alice A', '--data', dir])
    expect(add.code, add.stderr).toBe(0)
    const dup = await runCli(['user', 'add', 'alice', '--password', 'pw-alice', '--data', dir])
    expect(dup.code).toBe(2)
    expect(dup.stderr).toMatch(/exists/)
    const list = await runCli(['user', 'list', '--data', dir])
    expect(list.stdout).toMatch(/^alice\tAlice A/m)
    expect(list.stdout).toMatch(/^bob/m)
    expect((await runCli(['user', 'set', 'alice', '--display', 'Alice Acme', '--listed', '--data', dir])).code).toBe(0)
    expect((await runCli(['user', 'list', '--data', dir])).stdout).toMatch(/^alice\tAlice Acme/m)
    const noChange = await runCli(['user', 'set', 'alice', '--data', dir])
    expect(noChange.code).toBe(2)
    expect(noChange.stderr).toMatch(/--listed/)

    const ua = new SipTestUa('UDP', await sipPort(dir, 'UDP'))
    await ua.open()
    try {
      expect((await ua.registerWithAuth('alice', 'pw-alice')).final.status).toBe(200)
      expect((await ua.registerWithAuth('bob', 'pw-bob-1')).final.status).toBe(200)
      expect((await runCli(['user', 'passwd', 'bob', '--password', 'pw-bob-2', '--data', dir])).code).toBe(0)
      expect((await ua.registerWithAuth('bob', 'pw-bob-1')).final.status).toBe(401)
      expect((await ua.registerWithAuth('bob', 'pw-bob-2')).final.status).toBe(200)
      expect((await runCli(['user', 'rm', 'bob', '--data', dir])).code).toBe(0)
      expect((await runCli(['user', 'rm', 'bob', '--data', dir])).code).toBe(2)
    } finally {
      ua.close()
    }
    const status = await runCli(['status', '--data', dir])
    expect(status.code).toBe(0)
    expect(status.stdout).toMatch(/registrations\s+2/)
    expect(await stopDaemon(daemon)).toBe(0)
    daemon = undefined
    const down = await runCli(['status', '--data', dir])
    expect(down.code).toBe(3)
  })

  it('loses no binding and no user to kill -9', async () => {
    const rows = ['login,password,display_name']
    for (let i = 0; i < 100; i++) rows.push(`u${String(i).padStart(3, '0')},pw-${i}-x,User ${i}`)
    await writeFile(join(dir, 'users.csv'), rows.join('\n') + '\n')
    daemon = (await startDaemon(dir)).child
    const imp = await runCli(['user', 'import', join(dir, 'users.csv'), '--data', dir])
    expect(imp.stdout).toMatch(/imported 100 new/)
    const ua = new SipTestUa('UDP', await sipPort(dir, 'UDP'))
    await ua.open()
    try {
      for (let i = 0; i < 100; i++) {
        const login = `u${String(i).padStart(3, '0')}`
        const { final } = await ua.registerWithAuth(login, `pw-${i}-x`, { contact: `<sip:${login}@127.0.0.1:${ua.localPort}>` })
        expect(final.status).toBe(200)
      }
    } finally {
      ua.close()
    }
    expect(await stopDaemon(daemon, 'SIGKILL')).toBe(null)
    daemon = (await startDaemon(dir)).child
    const s = JSON.parse((await runCli(['status', '--json', '--data', dir])).stdout) as { registrations: number }
    expect(s.registrations).toBe(100)
    const users = (await runCli(['user', 'list', '--data', dir])).stdout.trim().split('\n')
    expect(users).toHaveLength(100)
  })

  it('lists call records with calls list, live and with the daemon down', async () => {
    daemon = (await startDaemon(dir, { M1NODE_MEDIA_ANCHOR: 'never' })).child
    for (const u of ['alice', 'bob']) expect((await runCli(['user', 'add', u, '--password', `pw-${u}`, '--data', dir])).code).toBe(0)
    const port = await sipPort(dir, 'UDP')
    const status = JSON.parse((await runCli(['status', '--json', '--data', dir])).stdout) as { domain: string }
    const alice = new Phone('alice', 'pw-alice', { port, domain: status.domain })
    const bob = new Phone('bob', 'pw-bob', { port, domain: status.domain })
    await alice.open()
    await bob.open()
    try {
      expect((await bob.register()).status).toBe(200)
      const call = alice.call('bob')
      expect((await call.final).status).toBe(200)
      expect((await call.bye()).status).toBe(200)
      expect((await alice.call('nobody').final).status).toBe(404)
    } finally {
      alice.close()
      bob.close()
    }
    const live = await runCli(['calls', 'list', '--since', '1h', '--data', dir])
    expect(live.code, live.stderr).toBe(0)
    expect(live.stdout).toMatch(new RegExp(`alice@${status.domain}  ->  bob@${status.domain}  200  caller-bye`))
    expect(await stopDaemon(daemon)).toBe(0)
    daemon = undefined
    const json = await runCli(['calls', 'list', '--json', '--data', dir])
    const rows = json.stdout.trim().split('\n').map(l => JSON.parse(l) as { status: number })
    expect(rows).toHaveLength(1)
    const bad = await runCli(['calls', 'list', '--since', 'yesterday-ish', '--data', dir])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--since/)
  })

  it('starts on embedded defaults with no init', async () => {
    const d = await startDaemon(dir)
    daemon = d.child
    expect(d.output()).toMatch(/Connect a phone/)
    expect(d.output()).toMatch(/login/)
    await stat(join(dir, 'identity.key'))
    expect(await stopDaemon(daemon)).toBe(0)
    daemon = undefined
  })
})
