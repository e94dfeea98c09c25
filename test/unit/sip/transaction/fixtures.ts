import { vi } from 'vitest'
import type { NameAddr, SipHeader, SipMessage, SipRequest, SipResponse, SipUri, TransportName, Via } from '../../../../src/sip/message/types.js'
import type { Flow, SendTarget } from '../../../../src/sip/transport/types.js'
import { TransactionLayer } from '../../../../src/sip/transaction/layer.js'
import type { ClientTransactionUser, TimerValues, TransactionUser } from '../../../../src/sip/transaction/types.js'

export const T1 = 500
export const T2 = 4000
export const T4 = 5000

export function uri (user: string, host: string, port?: number): SipUri {
  return { scheme: 'sip', user, host, port, params: {}, headers: {} }
}

function nameAddr (user: string, host: string, tag?: string): NameAddr {
  const u = uri(user, host)
  return { uri: u, rawUri: `sip:${user}@${host}`, params: tag !== undefined ? { tag } : {} }
}

function formatNameAddr (na: NameAddr): string {
  return `<${na.rawUri}>${na.params.tag != null ? `;tag=${na.params.tag}` : ''}`
}

export interface RequestOptions {
  method?: string
  branch?: string
  viaHost?: string
  viaPort?: number
  transport?: TransportName
  callId?: string
  seq?: number
  fromTag?: string
  toTag?: string
  ruri?: string
  routes?: string[]
}

/** A request as parse() would hand it over: parsed fields and matching raw headers. */
export function request (o: RequestOptions = {}): SipRequest {
  const method = o.method ?? 'REGISTER'
  const via: Via = {
    protocol: 'SIP/2.0',
    transport: o.transport ?? 'UDP',
    host: o.viaHost ?? '127.0.0.1',
    port: o.viaPort ?? 5062,
    params: { branch: o.branch ?? 'z9hG4bK-1', rport: null }
  }
  const from = nameAddr('alice', 'example.test', o.fromTag ?? 'ftag')
  const to = nameAddr('bob', 'example.test', o.toTag)
  const callId = o.callId ?? 'call-1@127.0.0.1'
  const seq = o.seq ?? 1
  const ruri = o.ruri ?? 'sip:bob@example.test'
  const cseqMethod = method
  const headers: SipHeader[] = [
    { name: 'Via', value: `SIP/2.0/${via.transport} ${via.host}:${via.port};branch=${String(via.params.branch)};rport` },
    ...(o.routes ?? []).map((r) => ({ name: 'Route', value: r })),
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: formatNameAddr(from) },
    { name: 'To', value: formatNameAddr(to) },
    { name: 'Call-ID', value: callId },
    { name: 'CSeq', value: `${seq} ${cseqMethod}` },
    { name: 'Content-Length', value: '0' }
  ]
  return {
    kind: 'request',
    method,
    uri: uri('bob', 'example.test'),
    rawUri: ruri,
    version: 'SIP/2.0',
    headers,
    body: Buffer.alloc(0),
    vias: [via],
    from,
    to,
    callId,
    cseq: { seq, method: cseqMethod },
    maxForwards: 70
  }
}

/** A response to `req` as parse() would hand it over. */
export function response (req: SipRequest, status: number, reason = 'Reason', opts: { toTag?: string } = {}): SipResponse {
  const toTag = opts.toTag ?? (req.to.params.tag ?? undefined)
  const to: NameAddr = { ...req.to, params: toTag !== undefined ? { ...req.to.params, tag: toTag } : { ...req.to.params } }
  const headers: SipHeader[] = req.headers
    .filter((h) => ['via', 'from', 'call-id', 'cseq'].includes(h.name.toLowerCase()))
  headers.push({ name: 'To', value: formatNameAddr(to) }, { name: 'Content-Length', value: '0' })
  return {
    kind: 'response',
    status,
    reason,
    version: 'SIP/2.0',
    headers,
    body: Buffer.alloc(0),
    vias: req.vias,
    from: req.from,
    to,
    callId: req.callId,
    cseq: req.cseq
  }
}

export function flow (transport: TransportName = 'UDP', port = 5062): Flow {
  const proto = transport.toLowerCase()
  return {
    transport,
    id: transport === 'UDP' ? `udp:127.0.0.1:${port}` : `${proto}:7`,
    remoteAddress: '127.0.0.1',
    remotePort: port,
    localAddress: '127.0.0.1',
    localPort: 5060
  }
}

export function target (transport: TransportName = 'UDP', port = 5070): SendTarget {
  return { transport, address: '127.0.0.1', port }
}

export interface Sent { target: SendTarget, msg: SipMessage }

/** A layer wired to recording stubs. `fail` makes the next sends reject (a transport error). */
export function harness (init: Partial<TimerValues> = {}) {
  const sent: Sent[] = []
  const state = { fail: false }
  const send = vi.fn(async (t: SendTarget, msg: SipMessage): Promise<void> => {
    if (state.fail) throw new Error('unreachable')
    sent.push({ target: t, msg })
  })
  const tu = {
    onRequest: vi.fn<TransactionUser['onRequest']>(),
    onAck: vi.fn<TransactionUser['onAck']>(),
    onStrayResponse: vi.fn<TransactionUser['onStrayResponse']>()
  }
  const layer = new TransactionLayer({
    send,
    isReliable: (t) => t !== 'UDP',
    tu
  }, init)
  return {
    layer,
    sent,
    send,
    tu,
    state,
    /** the status codes / methods sent so far, in order */
    wire: () => sent.map((s) => s.msg.kind === 'request' ? s.msg.method : s.msg.status)
  }
}

export function clientUser () {
  return {
    onResponse: vi.fn<ClientTransactionUser['onResponse']>(),
    onTimeout: vi.fn<ClientTransactionUser['onTimeout']>(),
    onTransportError: vi.fn<ClientTransactionUser['onTransportError']>()
  }
}

/** Lets rejected send() promises settle (they are reported on a microtask). */
export async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}
