import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { createSocket } from 'node:dgram'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

/** Whether an executable of that name is on PATH (interop suites are skipped without it). */
export function has (bin: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    try {
      accessSync(join(dir, bin), constants.X_OK)
      return true
    } catch {}
  }
  return false
}

/** What a finished child process left behind. */
export interface RunResult {
  /** exit code, or null when a signal ended it */
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** whether we killed it because it outlived `timeoutMs` */
  timedOut: boolean
}

export interface RunOptions {
  /** hard limit: the process gets SIGKILL after it */
  timeoutMs: number
  cwd?: string
  /** written to stdin, which is then closed; stdin is closed at once without it */
  input?: string
  env?: NodeJS.ProcessEnv
}

/**
 * Child processes started by the interop helpers, so a test's teardown can end every one of them even when the test
 * failed half-way.
 */
export class Children {
  private readonly live = new Set<ChildProcess>()

  /** Runs a command to completion (or to its time limit) and returns its exit status and output. */
  async run (cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
    const child = this.spawn(cmd, args, opts)
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr?.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    let timedOut = false
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, opts.timeoutMs)
    try {
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
        child.once('error', reject)
        child.once('close', (c, s) => { resolve([c, s]) })
      })
      return { code, signal, stdout, stderr, timedOut }
    } finally {
      clearTimeout(timer)
      this.live.delete(child)
    }
  }

  /** Starts a long-running command; `killAll()` ends it. */
  spawn (cmd: string, args: string[], opts: Omit<RunOptions, 'timeoutMs'> = {}): ChildProcess {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] })
    this.live.add(child)
    // a missing binary or a failed spawn must not become an uncaught 'error' event
    child.on('error', () => {})
    child.once('close', () => { this.live.delete(child) })
    child.stdin?.on('error', () => {})
    if (opts.input != null) child.stdin?.end(opts.input)
    else child.stdin?.end()
    return child
  }

  /** SIGTERM, then SIGKILL after `graceMs`, for every child still running; resolves when all are gone. */
  async killAll (graceMs = 1000): Promise<void> {
    await Promise.all([...this.live].map(async (child) => {
      if (child.exitCode != null || child.signalCode != null) return
      const gone = new Promise<void>(resolve => child.once('close', () => { resolve() }))
      child.kill('SIGTERM')
      const t = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
      await gone
      clearTimeout(t)
    }))
    this.live.clear()
  }
}

/** A long-running child with its stdout and stderr gathered as text. */
export interface Watched {
  child: ChildProcess
  /** everything printed so far, stdout and stderr interleaved */
  output: () => string
  /** resolves true once the output matches `re`, false after `timeoutMs` or when the process ends without it */
  waitOutput: (re: RegExp, timeoutMs: number) => Promise<boolean>
  /** resolves with the exit code once the process ends, or undefined after `timeoutMs` */
  waitExit: (timeoutMs: number) => Promise<number | null | undefined>
}

/** Gathers a child's output so tests can wait for lines and show them when something fails. */
export function watch (child: ChildProcess): Watched {
  let out = ''
  const onData = (d: string): void => { out += d }
  child.stdout?.setEncoding('utf8').on('data', onData)
  child.stderr?.setEncoding('utf8').on('data', onData)
  const exited = new Promise<number | null>(resolve => {
    if (child.exitCode != null || child.signalCode != null) resolve(child.exitCode)
    else child.once('close', (code) => { resolve(code) })
  })
  return {
    child,
    output: () => out,
    waitOutput: async (re, timeoutMs) => {
      const end = Date.now() + timeoutMs
      while (Date.now() < end) {
        if (re.test(out)) return true
        if (child.exitCode != null || child.signalCode != null) break
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      return re.test(out)
    },
    waitExit: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, timeoutMs) })
      try {
        return await Promise.race([exited, late])
      } finally {
        clearTimeout(timer)
      }
    }
  }
}

export interface TempDir {
  dir: string
  /** creates (if need be) the folder `name` inside it and returns its path */
  sub: (name: string) => Promise<string>
  remove: () => Promise<void>
}

/** A fresh temporary directory, a way to make folders in it, and a function removing it. */
export async function tempDir (prefix: string): Promise<TempDir> {
  const dir = await mkdtemp(join(tmpdir(), `m1node-${prefix}-`))
  return {
    dir,
    sub: async (name) => { const d = join(dir, name); await mkdir(d, { recursive: true }); return d },
    remove: async () => { await rm(dir, { recursive: true, force: true }) }
  }
}

async function canBind (port: number): Promise<boolean> {
  const udp = createSocket('udp4')
  const tcp = createServer()
  try {
    await new Promise<void>((resolve, reject) => { udp.once('error', reject); udp.bind(port, '127.0.0.1', () => { resolve() }) })
    await new Promise<void>((resolve, reject) => { tcp.once('error', reject); tcp.listen(port, '127.0.0.1', () => { resolve() }) })
    return true
  } catch {
    return false
  } finally {
    try { udp.close() } catch {}
    await new Promise<void>(resolve => { if (tcp.listening) tcp.close(() => { resolve() }); else resolve() })
  }
}

/**
 * A port free on 127.0.0.1 for both UDP and TCP within [min, max] (random start, then linear probe). A tool that
 * needs a fixed port of its own (or mangles 5-digit ports) gets one this way. Another process could still take it
 * before the tool binds: the default range sits below Linux's ephemeral ports (32768-60999, where port 0 binds land)
 * and away from the 5060/15060/25060 ports SIP tools and benchmarks like to use.
 */
export async function freePort (min = 30000, max = 32767): Promise<number> {
  const span = max - min + 1
  const start = Math.floor(Math.random() * span)
  for (let i = 0; i < Math.min(span, 500); i++) {
    const port = min + ((start + i) % span)
    if (await canBind(port)) return port
  }
  throw new Error(`no free port in ${min}-${max}`)
}

/** Polls `check` every `everyMs` until it returns true or `timeoutMs` passes; returns its last answer. */
export async function waitFor (check: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (check()) return true
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
  return check()
}
