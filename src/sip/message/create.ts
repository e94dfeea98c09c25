import { randomBytes } from 'node:crypto'
import { SipParseError } from '../errors.js'
import { canonicalHeaderName } from './headers.js'
import { formatNameAddr } from './name-addr.js'
import { cloneParams } from './scan.js'
import { reasonPhrase } from './status.js'
import { formatUri, parseUri } from './uri.js'
import { formatVia } from './via.js'
import type { NameAddr, SipHeader, SipRequest, SipResponse, SipUri, Via } from './types.js'

const EMPTY = Buffer.alloc(0)

/** Options of {@link createResponse}. */
export interface CreateResponseOptions {
  /** To tag added when the request's To has none (RFC 3261 §8.2.6.2) */
  toTag?: string
  /** extra headers, after the copied ones */
  headers?: SipHeader[]
  body?: Buffer
}

/**
 * Builds a response to `req` (RFC 3261 §8.2.6.2): Via entries, From, To (tagged with `toTag` when it has no tag),
 * Call-ID and CSeq are copied in request order; a 100 also copies Timestamp (§8.2.6.1).
 * The default reason phrase comes from {@link reasonPhrase}.
 */
export function createResponse (req: SipRequest, status: number, reason?: string, opts: CreateResponseOptions = {}): SipResponse {
  const headers: SipHeader[] = []
  let to: NameAddr = req.to
  const addTag = opts.toTag !== undefined && (req.to.params.tag === undefined || req.to.params.tag === null)
  for (const h of req.headers) {
    switch (h.name) {
      case 'Via': case 'From': case 'Call-ID': case 'CSeq':
        headers.push({ name: h.name, value: h.value })
        break
      case 'To':
        headers.push({ name: 'To', value: addTag ? h.value + ';tag=' + opts.toTag! : h.value })
        break
      case 'Timestamp':
        if (status === 100) headers.push({ name: h.name, value: h.value })
        break
    }
  }
  if (addTag) {
    const params = cloneParams(req.to.params)
    params.tag = opts.toTag!
    to = { ...req.to, params }
  }
  if (opts.headers !== undefined) for (const h of opts.headers) headers.push({ name: canonicalHeaderName(h.name), value: h.value })
  return {
    kind: 'response',
    status,
    reason: reason ?? reasonPhrase(status),
    version: 'SIP/2.0',
    headers,
    body: opts.body ?? EMPTY,
    vias: req.vias.map(cloneVia),
    from: req.from,
    to,
    callId: req.callId,
    cseq: { seq: req.cseq.seq, method: req.cseq.method }
  }
}

function cloneVia (v: Via): Via {
  return { protocol: v.protocol, transport: v.transport, host: v.host, port: v.port, params: cloneParams(v.params) }
}

/** What {@link createRequest} needs. */
export interface CreateRequestInit {
  method: string
  uri: SipUri | string
  from: NameAddr
  to: NameAddr
  callId: string
  cseq: number
  via: Via
  /** @default 70 */
  maxForwards?: number
  /** extra headers, after the mandatory ones */
  headers?: SipHeader[]
  body?: Buffer
}

/**
 * Builds a request with the headers RFC 3261 §8.1.1 requires, in the order Via, Max-Forwards, From, To,
 * Call-ID, CSeq, then `headers`. A string `uri` is parsed (throws {@link SipParseError}).
 */
export function createRequest (init: CreateRequestInit): SipRequest {
  const uri = typeof init.uri === 'string' ? parseUri(init.uri) : init.uri
  const rawUri = typeof init.uri === 'string' ? init.uri : formatUri(init.uri)
  if (!Number.isInteger(init.cseq) || init.cseq < 0 || init.cseq > 0x7fffffff) {
    throw new SipParseError('CSeq: sequence number must be an integer below 2^31')
  }
  const maxForwards = init.maxForwards ?? 70
  const headers: SipHeader[] = [
    { name: 'Via', value: formatVia(init.via) },
    { name: 'Max-Forwards', value: String(maxForwards) },
    { name: 'From', value: formatNameAddr(init.from) },
    { name: 'To', value: formatNameAddr(init.to) },
    { name: 'Call-ID', value: init.callId },
    { name: 'CSeq', value: init.cseq + ' ' + init.method }
  ]
  if (init.headers !== undefined) for (const h of init.headers) headers.push({ name: canonicalHeaderName(h.name), value: h.value })
  return {
    kind: 'request',
    method: init.method,
    uri,
    rawUri,
    version: 'SIP/2.0',
    headers,
    body: init.body ?? EMPTY,
    vias: [init.via],
    from: init.from,
    to: init.to,
    callId: init.callId,
    cseq: { seq: init.cseq, method: init.method },
    maxForwards
  }
}

/** A Via branch: the RFC 3261 §8.1.1.7 magic cookie `z9hG4bK` and 96 random bits. */
export function newBranch (): string {
  return 'z9hG4bK' + randomBytes(12).toString('base64url')
}

/** A From/To tag (RFC 3261 §19.3: at least 32 random bits; 64 here). */
export function newTag (): string {
  return randomBytes(8).toString('base64url')
}

/** A Call-ID (RFC 3261 §8.1.1.4: globally unique; 128 random bits). */
export function newCallId (): string {
  return randomBytes(16).toString('base64url')
}

/**
 * The stateless answer to a request that failed to parse (RFC 3261 §8.2, §16.3; RFC 4475 §3.3.1: echo what can
 * be echoed): status line from `err.status` (400, or 505), the Via, From, To, Call-ID and CSeq lines as received
 * (whatever of them exists; To gets a tag when it is readable and has none), Content-Length 0.
 * Null when the data was not a request, or was an ACK (never answered).
 */
export function createParseErrorResponse (err: SipParseError): Buffer | null {
  const p = err.partial
  if (p === undefined || p.kind !== 'request' || p.method === 'ACK') return null
  const detail = err.reason.replace(/[\x00-\x1f\x7f]/g, ' ').slice(0, 100)
  let out = `SIP/2.0 ${err.status} ${reasonPhrase(err.status)} (${detail})\r\n`
  const seen = new Set<string>()
  for (const h of p.headers ?? []) {
    if (h.name === 'Via') {
      out += 'Via: ' + h.value + '\r\n'
    } else if ((h.name === 'From' || h.name === 'To' || h.name === 'Call-ID' || h.name === 'CSeq') && !seen.has(h.name)) {
      seen.add(h.name)
      const tag = h.name === 'To' && p.to !== undefined && p.to.params.tag == null ? ';tag=' + newTag() : ''
      out += h.name + ': ' + h.value + tag + '\r\n'
    }
  }
  out += 'Content-Length: 0\r\n\r\n'
  return Buffer.from(out, 'utf8')
}
