import { parseMessage, type SipResponse } from '../../src/sip/message/index.js'
import type { SipStream } from '../../src/routing/index.js'

/** A frame of /m1/sip/1.0.0: 4-byte big-endian length, then the SIP message. */
export function sipFrame (text: string): Uint8Array {
  const body = Buffer.from(text)
  const out = Buffer.alloc(4 + body.length)
  out.writeUInt32BE(body.length, 0)
  body.copy(out, 4)
  return out
}

/** Reads SIP frames from a stream until a final response arrives; aborts the stream after `timeoutMs`. */
export async function finalResponse (stream: SipStream, timeoutMs: number): Promise<SipResponse> {
  let buf = Buffer.alloc(0)
  const timer = setTimeout(() => { stream.abort(new Error('timeout')) }, timeoutMs)
  try {
    for await (const chunk of stream) {
      buf = Buffer.concat([buf, chunk instanceof Uint8Array ? chunk : chunk.subarray()])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const msg = parseMessage(buf.subarray(4, 4 + buf.readUInt32BE(0)))
        buf = buf.subarray(4 + buf.readUInt32BE(0))
        if (msg.kind === 'response' && msg.status >= 200) return msg
      }
    }
  } finally {
    clearTimeout(timer)
  }
  throw new Error('stream ended without a final response')
}

/** An INVITE as a node would send it over /m1/sip/1.0.0 (no SDP), from the node `via`. */
export function p2pInvite (o: { n: number, from: string, to: string, via: string }): string {
  return [
    `INVITE ${o.to} SIP/2.0`, `Via: SIP/2.0/P2P ${o.via}:5060;branch=z9hG4bKspoof${o.n}`, 'Max-Forwards: 70',
    `From: <${o.from}>;tag=spoof`, `To: <${o.to}>`, `Call-ID: spoof-${o.n}`, 'CSeq: 1 INVITE',
    `Contact: <sip:${o.via}:5060;transport=p2p>`, 'Content-Length: 0', '', ''
  ].join('\r\n')
}
