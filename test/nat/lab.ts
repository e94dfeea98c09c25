// Helpers of the NAT lab tests: the lab script, daemons and CLI runs inside its network namespaces.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BIN, type RunResult } from '../helpers/cli.js'
import { Children } from '../interop/lib/tools.js'

export const LAB = fileURLToPath(new URL('./lab.sh', import.meta.url))
const DIST = BIN.replace(/bin\/m1node\.js$/, 'dist/cli/index.js')

const have = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0

/** Why the lab cannot run here, or undefined when it can. */
export function labUnavailable (): string | undefined {
  if (process.platform !== 'linux') return 'the NAT lab needs Linux network namespaces'
  if (process.getuid?.() !== 0) return 'the NAT lab needs root (network namespaces, nftables)'
  for (const b of ['ip', 'nft', 'conntrack', 'sipp']) if (!have(b)) return `the NAT lab needs ${b} (apt-get install iproute2 nftables conntrack sip-tester)`
  if (!existsSync(DIST)) return 'the NAT lab runs the built CLI: npm run build first'
  return undefined
}

/** Runs lab.sh with arguments; throws with its output when it fails. */
export function lab (...args: string[]): string {
  const r = spawnSync('bash', [LAB, ...args], { encoding: 'utf8', timeout: 60_000 })
  if (r.status !== 0) throw new Error(`lab.sh ${args.join(' ')} failed: ${r.stdout}${r.stderr}`)
  return r.stdout
}

/** Runs the m1node CLI inside a namespace; bounded by `timeoutMs`. */
export async function cliIn (ns: string, args: string[], timeoutMs = 20_000, env: Record<string, string> = {}): Promise<RunResult> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Children whose commands run inside one namespace (so the interop helpers' runSipp runs SIPp in a LAN). */
export class NsChildren extends Children {
  constructor (readonly ns: string) { super() }
  override async run (cmd: string, args: string[], opts: Parameters<Children['run']>[2]): ReturnType<Children['run']> {
    return await super.run('ip', ['netns', 'exec', this.ns, cmd, ...args], opts)
  }
}

export interface LabDaemon {
  name: string
  ns: string
  dir: string
  child: ChildProcess
  output: () => string
}

export interface Status { peerId: string, p2p: string[], relays: string[], public: boolean, relay?: { reservations: number, circuits: number } }

/** `m1node start` inside a namespace (`ip netns exec` execs it: the child is the daemon); resolves once status answers. */
export async function startIn (ns: string, name: string, dir: string, env: Record<string, string>, args: string[] = []): Promise<LabDaemon> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, BIN, 'start', '--data', dir, ...args], {
    env: {
      ...process.env,
      M1NODE_NODE_NAME: name,
      M1NODE_SIP_HOST: '127.0.0.1',
      M1NODE_MEDIA_HOST: '127.0.0.1',
      M1NODE_LOG_LEVEL: 'info',
      M1NODE_DIRECTORY_NEGATIVE_CACHE_TTL: '0',
      M1NODE_DIRECTORY_CACHE_TTL: '0',
      M1NODE_ROUTING_RING_TIMEOUT: '10',
      M1NODE_AUTH_ALGORITHMS: 'MD5',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d) => { out = (out + String(d)).slice(-200_000) })
  child.stderr!.on('data', (d) => { out = (out + String(d)).slice(-200_000) })
  // ready once daemon.json names this process (`ip netns exec` execs the daemon: same pid); the CLI is not asked
  // before, since without a running daemon it opens the store itself and the starting daemon would find it locked
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline) {
    if (child.exitCode != null) throw new Error(`${name} exited with ${child.exitCode}: ${out.slice(-3000)}`)
    try {
      const info = JSON.parse(await readFile(join(dir, 'daemon.json'), 'utf8')) as { pid: number }
      if (info.pid === child.pid) return { name, ns, dir, child, output: () => out }
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`${name} did not start: ${out.slice(-3000)}`)
}

export async function status (d: LabDaemon): Promise<Status> {
  const r = await cliIn(d.ns, ['status', '--json', '--data', d.dir], 10_000)
  if (r.code !== 0) throw new Error(`status of ${d.name}: ${r.stderr}`)
  return JSON.parse(r.stdout) as Status
}

/** Connections of a daemon: peer id and remote address of each. */
export async function peers (d: LabDaemon): Promise<Array<{ peerId: string, addrs: string[] }>> {
  const r = await cliIn(d.ns, ['peers', '--json', '--data', d.dir], 10_000)
  if (r.code !== 0) return []
  return (JSON.parse(r.stdout) as { peers: Array<{ peerId: string, addrs: string[] }> }).peers
}

export async function stopIn (d: LabDaemon, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (d.child.exitCode != null || d.child.signalCode != null) return
  const closed = new Promise<void>(resolve => d.child.once('close', () => { resolve() }))
  d.child.kill(signal)
  const t = setTimeout(() => d.child.kill('SIGKILL'), 10_000)
  await closed
  clearTimeout(t)
}

export const sleep = async (ms: number): Promise<void> => await new Promise(resolve => setTimeout(resolve, ms))

export async function until<T> (what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 300): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let v: T | undefined | false
    try { v = await fn() } catch { v = undefined }
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(everyMs)
  }
}
