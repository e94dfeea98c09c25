import { readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'vitest'
import { freePort, type Children, type RunResult } from './tools.js'
import { startLine, tracedMessages } from './calls.js'

/** Folder of the SIPp scenarios shipped with the interop tests. */
export const SCENARIOS = join(dirname(fileURLToPath(import.meta.url)), '..', 'scenarios')

export interface SippRun {
  /** scenario file name inside test/interop/scenarios */
  scenario: string
  /** 'u1' (UDP, one socket) or 't1' (TCP, one connection) */
  transport: 'u1' | 't1'
  /** the node's port for that transport */
  remotePort: number
  /**
   * SIPp's own port, so that several runs share one Contact. When absent a free one is picked here: SIPp 3.6.1 binds
   * 5060 by default (its help text says "random"), which collides with anything else on the host.
   */
  localPort?: number
  /** injection CSV (already written) */
  inf?: string
  /** number of calls; SIPp exits once they are done */
  calls?: number
  /** calls per second @default 10 */
  rate?: number
  /** extra arguments (-s, -au, -ap, -set ...) */
  args?: string[]
  /** working directory, where -trace_err / -trace_stat files land */
  dir: string
  /** SIPp's own global timeout, in seconds @default 10 */
  timeoutS?: number
  /** keep every message sent and received (-trace_msg), returned as `messages` */
  traceMsg?: boolean
}

export interface SippResult extends RunResult {
  /** content of the -trace_err log (unexpected messages), '' when none */
  errors: string
  /** the -trace_msg log when asked for, '' otherwise */
  messages: string
  /** the final statistics line of the -trace_stat CSV, by column name */
  stats: Record<string, string>
}

/**
 * Runs SIPp headless (-nostdin) against 127.0.0.1 and waits for it to exit. Exit code 0 means every call succeeded,
 * 1 that at least one failed; SIPp is SIGKILLed a few seconds after its own -timeout.
 */
export async function runSipp (children: Children, o: SippRun): Promise<SippResult> {
  const timeoutS = o.timeoutS ?? 10
  // several runs may share one folder: start each from empty logs
  for (const f of ['errors.log', 'messages.log', 'stats.csv']) await rm(join(o.dir, f), { force: true })
  const args = [
    '127.0.0.1:' + String(o.remotePort),
    '-sf', join(SCENARIOS, o.scenario),
    '-t', o.transport,
    '-i', '127.0.0.1',
    '-p', String(o.localPort ?? await freePort()),
    ...(o.inf != null ? ['-inf', o.inf] : []),
    '-m', String(o.calls ?? 1),
    '-r', String(o.rate ?? 10),
    '-nostdin',
    '-recv_timeout', '5000',
    // on an unexpected answer SIPp would end the "call" with a BYE, which means nothing to a registrar
    '-default_behaviors', 'all,-bye',
    // SIPp exits with an error when the global timeout is reached
    '-timeout', `${timeoutS}s`, '-timeout_error',
    '-trace_err', '-error_file', join(o.dir, 'errors.log'),
    '-trace_stat', '-stf', join(o.dir, 'stats.csv'),
    ...(o.traceMsg === true ? ['-trace_msg', '-message_file', join(o.dir, 'messages.log')] : []),
    ...(o.args ?? [])
  ]
  const res = await children.run('sipp', args, { timeoutMs: (timeoutS + 5) * 1000, cwd: o.dir })
  const errors = await readFile(join(o.dir, 'errors.log'), 'utf8').catch(() => '')
  const messages = o.traceMsg === true ? await readFile(join(o.dir, 'messages.log'), 'utf8').catch(() => '') : ''
  const stats = parseStats(await readFile(join(o.dir, 'stats.csv'), 'utf8').catch(() => ''))
  return { ...res, errors, messages, stats }
}

function parseStats (csv: string): Record<string, string> {
  const lines = csv.split('\n').filter(l => l.trim() !== '')
  if (lines.length < 2) return {}
  const head = lines[0]!.split(';')
  const last = lines[lines.length - 1]!.split(';')
  const out: Record<string, string> = {}
  head.forEach((h, i) => { if (h !== '') out[h] = last[i] ?? '' })
  return out
}

/** Writes a SEQUENTIAL injection file for register-auth.xml / unregister.xml: login;password;[authentication ...]. */
export async function writeUsersCsv (file: string, users: Array<{ login: string, password: string }>): Promise<string> {
  const lines = ['SEQUENTIAL', ...users.map(u => `${u.login};${u.password};[authentication username=${u.login} password=${u.password}]`)]
  await writeFile(file, lines.join('\n') + '\n')
  return file
}

/** Status codes of the responses SIPp received, in order, from a -trace_msg log. */
export function receivedStatuses (messages: string): number[] {
  // SIPp writes an unexpected message a second time ("Unexpected UDP message received:"): count the first only
  return [...messages.matchAll(/message received \[\d+\] bytes :\s*\n\s*SIP\/2\.0 (\d{3}) /g)].map(m => Number(m[1]))
}

/**
 * The events SIPp logged, without its watchdog's "Overload warning" lines: those say the host was busy (SIPp's own
 * loop ran late), not that a message was wrong.
 */
export function sippEvents (r: SippResult): string {
  return r.errors.split('\n').filter(l => !/Overload warning: the (minor|major) watchdog/.test(l) && !/^The following events occurred:/.test(l) && l.trim() !== '').join('\n')
}

/** SIPp exited 0, in time, with no event logged; `who` names the run in the failure. */
export function expectSippOk (r: SippResult, who: string): void {
  expect({ who, code: r.code, timedOut: r.timedOut, errors: sippEvents(r).slice(0, 2000) }, `${who} sipp stderr: ${r.stderr.slice(0, 2000)}`)
    .toEqual({ who, code: 0, timedOut: false, errors: '' })
}

/** The texts of the messages SIPp received (from its -trace_msg log) whose start line matches `re`, in order. */
export function receivedMessages (r: SippResult, re: RegExp): string[] {
  return tracedMessages(r.messages).filter(m => m.dir === 'received' && re.test(startLine(m.text))).map(m => m.text)
}
