import { readFile } from 'node:fs/promises'
import { createSocket } from 'node:dgram'

/** Whether something holds UDP `port` on any address (from /proc/net/udp; no socket of ours is bound to probe it). */
export async function udpBound (port: number): Promise<boolean> {
  const hex = port.toString(16).toUpperCase().padStart(4, '0')
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = await readFile(file, 'utf8').catch(() => '')
    // "  sl  local_address rem_address ...": local_address is ADDR:PORT in hex
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1]
      if (local?.endsWith(`:${hex}`) === true) return true
    }
  }
  return false
}

/** Polls until a process binds UDP `port`; false after `timeoutMs`. */
export async function waitUdpBound (port: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await udpBound(port)) return true
    await new Promise(resolve => setTimeout(resolve, 25))
  }
  return await udpBound(port)
}

async function canBindUdp (port: number): Promise<boolean> {
  const s = createSocket('udp4')
  try {
    await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, '127.0.0.1', () => { resolve() }) })
    return true
  } catch {
    return false
  } finally {
    try { s.close() } catch {}
  }
}

/**
 * The first port of `size` consecutive UDP ports free on 127.0.0.1, within [min, max] (random start). SIPp's media
 * (-mp) takes RTP and RTCP for audio and video from its port on: it needs a block, not one port. The default range
 * lies above Linux's ephemeral ports (32768-60999) and away from the ranges media relays and benchmarks use
 * (20000-39999). A tool binds its ports some time after this probe: suites running side by side should each pass a
 * range of their own.
 */
export async function freeUdpBlock (size: number, min = 64000, max = 65499): Promise<number> {
  const slots = Math.floor((max - min + 1) / size)
  const start = Math.floor(Math.random() * slots)
  for (let i = 0; i < Math.min(slots, 200); i++) {
    const base = min + ((start + i) % slots) * size
    let ok = true
    for (let p = base; p < base + size && ok; p++) ok = await canBindUdp(p)
    if (ok) return base
  }
  throw new Error(`no ${size} free UDP ports in ${min}-${max}`)
}

/** One SIP message from a SIPp -trace_msg log: whether SIPp sent or received it, and its text. */
export interface TracedMessage {
  dir: 'sent' | 'received'
  text: string
}

/** Splits a SIPp -trace_msg log into its messages, in order. */
export function tracedMessages (log: string): TracedMessage[] {
  const out: TracedMessage[] = []
  // each entry: "----- <date> ---\nUDP message sent (N bytes):\n\n<message>" or "... message received [N] bytes :\n\n<message>"
  const re = /^(?:UDP|TCP|TLS|SCTP) message (sent|received) [^\n]*\n+([\s\S]*?)(?=\n-{5,} |$(?![\s\S]))/gm
  for (const m of log.matchAll(re)) out.push({ dir: m[1] as 'sent' | 'received', text: m[2]!.trim() })
  return out
}

/** The first-line of a SIP message: request method or response status. */
export function startLine (text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? ''
}

/** The audio port of the first m=audio line of a message's SDP, undefined without one. */
export function sdpAudioPort (text: string): number | undefined {
  const m = /^m=audio (\d+) /m.exec(text)
  return m != null ? Number(m[1]) : undefined
}

/** The connection address (c=) of a message's SDP. */
export function sdpAddress (text: string): string | undefined {
  return /^c=IN IP[46] (\S+)/m.exec(text)?.[1]
}

/** `count` distinct blocks of `size` free UDP ports (see freeUdpBlock), for tools started one after another. */
export async function freeUdpBlocks (count: number, size: number, min: number, max: number): Promise<number[]> {
  const out: number[] = []
  for (let tries = 0; out.length < count && tries < 100; tries++) {
    const base = await freeUdpBlock(size, min, max)
    if (!out.includes(base)) out.push(base)
  }
  if (out.length < count) throw new Error(`no ${count} distinct blocks of ${size} free UDP ports in ${min}-${max}`)
  return out
}
