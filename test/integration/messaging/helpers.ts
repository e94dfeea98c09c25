import { randomBytes } from 'node:crypto'
import { getHeader, type SipRequest, type SipResponse } from '../../../src/sip/message/index.js'
import type { Phone } from '../../helpers/phone.js'

const rnd = (n = 6): string => randomBytes(n).toString('hex')

export interface SendOptions {
  /** Request-URI and To (default sip:<target>@<phone domain>) */
  uri?: string
  /** From URI (default sip:<login>@<phone domain>) */
  from?: string
  type?: string
  headers?: string[]
  /** false: do not answer a 407 */
  auth?: boolean
  /** per request @default 10000 */
  timeoutMs?: number
}

/** Sends a MESSAGE (RFC 3428) from a phone, answering the 407 challenge; resolves with the final response. */
export async function sendMessage (phone: Phone, target: string, body: string | Buffer, opts: SendOptions = {}): Promise<SipResponse> {
  const uri = opts.uri ?? `sip:${target}@${phone.domain}`
  const callId = `msg-${rnd()}`
  const build = (auth?: string): string => {
    const b = Buffer.isBuffer(body) ? body : Buffer.from(body)
    return [
      `MESSAGE ${uri} SIP/2.0`, `Via: ${phone.viaFor(phone.newBranch())}`, 'Max-Forwards: 70',
      `From: <${opts.from ?? `sip:${phone.login}@${phone.domain}`}>;tag=${rnd()}`, `To: <${uri}>`,
      `Call-ID: ${callId}`, `CSeq: ${phone.nextCseq()} MESSAGE`, `Content-Type: ${opts.type ?? 'text/plain'}`,
      ...(opts.headers ?? []), ...(auth != null ? [`Proxy-Authorization: ${auth}`] : []),
      `Content-Length: ${b.length}`, '', b.toString('latin1')
    ].join('\r\n')
  }
  const t = opts.timeoutMs ?? 10_000
  let res = await phone.request(build(), t)
  if (res.status === 407 && opts.auth !== false) res = await phone.request(build(phone.authorize(res, 'MESSAGE', uri, 'Proxy-Authenticate')), t)
  return res
}

/** MESSAGE requests a phone received, oldest first (every retransmission and retry included). */
export function messagesOf (phone: Phone): SipRequest[] {
  return phone.received.filter((m): m is SipRequest => m.kind === 'request' && m.method === 'MESSAGE')
}

/** Distinct message bodies a phone received, in arrival order (duplicates by M1-Message-ID removed). */
export function bodiesOf (phone: Phone, type = 'text/plain'): string[] {
  const seen = new Set<string>()
  const out: string[] = []
  for (const m of messagesOf(phone)) {
    if ((getHeader(m, 'Content-Type') ?? '') !== type) continue
    const id = getHeader(m, 'M1-Message-ID') ?? ''
    if (seen.has(id)) continue
    seen.add(id)
    out.push(m.body.toString())
  }
  return out
}

import { sleep } from '../../helpers/wait.js'
export { sleep }

/** Polls `check` until it is true or `timeoutMs` passes (then throws `what`). */
export async function until (check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}
