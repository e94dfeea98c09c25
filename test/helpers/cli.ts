import { spawn, type ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/m1node.js', import.meta.url))

export interface RunResult { code: number | null, stdout: string, stderr: string }

/** Runs the m1node CLI (the built dist/, as users run it) and collects its output; bounded by `timeoutMs`. */
export async function runCli (args: string[], opts: { env?: Record<string, string>, input?: string, timeoutMs?: number } = {}): Promise<RunResult> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => { stdout += String(d) })
  child.stderr.on('data', (d) => { stderr += String(d) })
  child.stdin.end(opts.input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000)
  const code = await new Promise<number | null>(resolve => child.on('close', resolve))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/** Starts `m1node start` as a separate process and waits until its control API answers /health. */
export async function startDaemon (dataDir: string, env: Record<string, string> = {}): Promise<{ child: ChildProcess, url: string, output: () => string }> {
  const child = spawn(process.execPath, [BIN, 'start', '--data', dataDir], {
    env: {
      ...process.env,
      M1NODE_SIP_HOST: '127.0.0.1',
      M1NODE_SIP_UDP_PORT: '0',
      M1NODE_SIP_TCP_PORT: '0',
      M1NODE_SIP_WS_PORT: '0',
      M1NODE_WEB_PORT: '0',
      M1NODE_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0',
      M1NODE_P2P_ALLOW_PRIVATE_ADDRESSES: 'true',
      M1NODE_SIP_EGRESS_ALLOW: '127.0.0.0/8',
      M1NODE_LOG_LEVEL: 'warn',
      ...env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout!.on('data', (d) => { out += String(d) })
  child.stderr!.on('data', (d) => { out += String(d) })
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode != null) throw new Error(`daemon exited with ${child.exitCode}: ${out}`)
    try {
      const info = JSON.parse(await readFile(join(dataDir, 'daemon.json'), 'utf8')) as { url: string, pid: number }
      if (info.pid === child.pid) {
        const res = await fetch(`${info.url}/health`)
        if (res.status === 200) return { child, url: info.url, output: () => out }
      }
    } catch {}
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`daemon did not become ready: ${out}`)
}

export async function stopDaemon (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (child.exitCode != null) return child.exitCode
  const closed = new Promise<number | null>(resolve => child.once('close', (code) => resolve(code)))
  child.kill(signal)
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  const code = await closed
  clearTimeout(timer)
  return code
}
