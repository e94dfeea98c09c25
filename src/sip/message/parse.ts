import { SipParseError, type SipParseErrorPartial } from '../errors.js'
import { isDigit, isToken, isWs } from './chars.js'
import { canonicalHeaderName, parseCSeq, parseCallId, parseContentLength, parseMaxForwards } from './headers.js'
import { parseNameAddr } from './name-addr.js'
import { parseUri } from './uri.js'
import { trimWs } from './scan.js'
import { readVias } from './via.js'
import type { CSeq, NameAddr, SipHeader, SipMessage, SipRequest, SipResponse, Via } from './types.js'

const CRLFCRLF = Buffer.from('\r\n\r\n')
const LFLF = Buffer.from('\n\n')
const LFCRLF = Buffer.from('\n\r\n')
const EMPTY = Buffer.alloc(0)

/** What was read before a failure: the start line and the header lines. */
interface ParseState {
  kind?: 'request' | 'response'
  method?: string
  headers?: SipHeader[]
  /** an empty line was met before the end of the header section */
  sawEmptyLine?: boolean
}

/**
 * Parses one SIP message: a UDP datagram, or one message framed from a stream (RFC 3261 §7, §18.3).
 *
 * - Header lines: folding (LWS) is unfolded, names are case-insensitive and compact forms are expanded to the
 *   canonical long name; each Via value gets a header entry of its own; other lines are kept as received.
 * - Eagerly parsed: start line, Via, From, To, Call-ID, CSeq, Max-Forwards, Content-Length; anything else stays raw.
 * - Body: `Content-Length` octets after the empty line. A datagram holding more is truncated (§18.3); one holding
 *   fewer is refused. Without Content-Length the body is the rest of the data. The body is a copy.
 * - Liberal where RFC 4475 allows it: several SP between request-line elements, trailing SP, bare LF line ends,
 *   a missing empty line at the very end of a datagram.
 *
 * Throws {@link SipParseError} (never anything else), with `partial` holding what could be read.
 */
export function parseMessage (data: Buffer): SipMessage {
  const st: ParseState = {}
  try {
    return parse(data, st)
  } catch (err) {
    const e = err instanceof SipParseError ? err : new SipParseError('internal parser error', { cause: err })
    throw new SipParseError(e.reason, { status: e.status, partial: collectPartial(st), cause: e.cause })
  }
}

function parse (data: Buffer, st: ParseState): SipMessage {
  // RFC 3261 §7.5: ignore CRLFs before the start line
  let start = 0
  while (start < data.length && (data[start] === 13 || data[start] === 10)) start++
  if (start >= data.length) throw new SipParseError('empty message')

  let headEnd: number
  let bodyStart: number
  let unterminated = false
  const crlf = data.indexOf(CRLFCRLF, start)
  if (crlf >= 0) {
    headEnd = crlf
    bodyStart = crlf + 4
  } else {
    const lf = data.indexOf(LFLF, start)
    if (lf >= 0) {
      headEnd = lf
      bodyStart = lf + 2
    } else if (data[data.length - 1] === 10) {
      // a datagram whose header section lacks only its closing empty line
      headEnd = data.length - (data[data.length - 2] === 13 ? 2 : 1)
      bodyStart = data.length
    } else {
      // read what is there (for the partial result), then refuse
      headEnd = data.length
      bodyStart = data.length
      unterminated = true
    }
  }
  const text = data.toString('utf8', start, headEnd)

  // start line
  let eol = text.indexOf('\n')
  if (eol < 0) eol = text.length
  const firstLine = text.slice(0, eol > 0 && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol)
  // the header lines are read even after a bad start line, so that the error carries them (505 needs Via & co)
  let startLine: StartLine | undefined
  let startError: unknown
  try {
    startLine = parseStartLine(firstLine, st)
  } catch (err) {
    startError = err
  }
  let headers: SipHeader[]
  try {
    headers = readHeaderLines(text, eol + 1, st)
  } catch (err) {
    throw startError ?? err
  }
  if (st.sawEmptyLine === true) {
    // an empty line before the CRLFCRLF found above (bare-LF header section): the body starts after it. Found
    // again in the bytes, as invalid UTF-8 makes string and byte offsets differ.
    const a = data.indexOf(LFLF, start)
    const b = data.indexOf(LFCRLF, start)
    if (a >= 0 && (b < 0 || a < b)) bodyStart = a + 2
    else if (b >= 0) bodyStart = b + 3
    unterminated = false
  }
  if (startLine === undefined) throw startError
  if (unterminated) throw new SipParseError('header section not terminated')

  // eager fields, and Via split one value per entry
  const vias: Via[] = []
  const out: SipHeader[] = []
  let from: NameAddr | undefined
  let to: NameAddr | undefined
  let callId: string | undefined
  let cseq: CSeq | undefined
  let maxForwards: number | undefined
  let contentLength = -1
  for (let k = 0; k < headers.length; k++) {
    const h = headers[k]!
    switch (h.name) {
      case 'Via': {
        const raws: string[] = []
        readVias(h.value, vias, raws)
        if (raws.length === 1) out.push(h)
        else for (const r of raws) out.push({ name: 'Via', value: r })
        continue
      }
      case 'From':
        if (from !== undefined) throw new SipParseError('more than one From')
        from = parseNameAddr(h.value, 'From')
        break
      case 'To':
        if (to !== undefined) throw new SipParseError('more than one To')
        to = parseNameAddr(h.value, 'To')
        break
      case 'Call-ID':
        if (callId !== undefined) throw new SipParseError('more than one Call-ID')
        callId = parseCallId(h.value)
        break
      case 'CSeq':
        if (cseq !== undefined) throw new SipParseError('more than one CSeq')
        cseq = parseCSeq(h.value)
        break
      case 'Max-Forwards':
        if (startLine.kind === 'request') {
          if (maxForwards !== undefined) throw new SipParseError('more than one Max-Forwards')
          maxForwards = parseMaxForwards(h.value)
        }
        break
      case 'Content-Length': {
        const n = parseContentLength(h.value)
        // RFC 4475 §3.3.9: conflicting Content-Length values cannot be framed
        if (contentLength >= 0 && n !== contentLength) throw new SipParseError('conflicting Content-Length values')
        contentLength = n
        break
      }
    }
    out.push(h)
  }
  if (vias.length === 0) throw new SipParseError('missing Via')
  if (from === undefined) throw new SipParseError('missing From')
  if (to === undefined) throw new SipParseError('missing To')
  if (callId === undefined) throw new SipParseError('missing Call-ID')
  if (cseq === undefined) throw new SipParseError('missing CSeq')
  // RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17: the CSeq method matches the request method
  if (startLine.kind === 'request' && cseq.method !== startLine.method) throw new SipParseError('CSeq method does not match the request method')

  let body: Buffer
  const available = data.length - bodyStart
  if (contentLength < 0) {
    body = available > 0 ? Buffer.from(data.subarray(bodyStart)) : EMPTY
  } else if (contentLength > available) {
    throw new SipParseError(`body shorter than Content-Length (${available} < ${contentLength})`)
  } else {
    // RFC 3261 §18.3: octets beyond Content-Length in a datagram are discarded
    body = contentLength > 0 ? Buffer.from(data.subarray(bodyStart, bodyStart + contentLength)) : EMPTY
  }

  if (startLine.kind === 'request') {
    const req: SipRequest = {
      kind: 'request',
      method: startLine.method,
      uri: startLine.uri,
      rawUri: startLine.rawUri,
      version: 'SIP/2.0',
      headers: out,
      body,
      vias,
      from,
      to,
      callId,
      cseq,
      maxForwards
    }
    return req
  }
  const res: SipResponse = {
    kind: 'response',
    status: startLine.status,
    reason: startLine.reason,
    version: 'SIP/2.0',
    headers: out,
    body,
    vias,
    from,
    to,
    callId,
    cseq
  }
  return res
}

type StartLine =
  | { kind: 'request', method: string, uri: ReturnType<typeof parseUri>, rawUri: string }
  | { kind: 'response', status: number, reason: string }

function parseStartLine (line: string, st: ParseState): StartLine {
  if (line.length >= 4 && line.slice(0, 4).toUpperCase() === 'SIP/') {
    st.kind = 'response'
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    const sp = line.indexOf(' ')
    if (sp < 0) throw new SipParseError('bad status line')
    checkVersion(line.slice(0, sp), false)
    let i = sp + 1
    while (line.charCodeAt(i) === 32) i++
    const cs = i
    while (i < line.length && isDigit(line.charCodeAt(i))) i++
    if (i - cs !== 3 || (i < line.length && line.charCodeAt(i) !== 32 && line.charCodeAt(i) !== 9)) {
      throw new SipParseError('bad status code')
    }
    const status = Number(line.slice(cs, i))
    if (status < 100 || status > 699) throw new SipParseError('status code out of range')
    // RFC 4475 §3.1.1.13: the reason phrase may be empty
    const reason = line.slice(i + 1).trim()
    return { kind: 'response', status, reason }
  }
  // Request-Line = Method SP Request-URI SP SIP-Version; RFC 4475 §3.1.2.9/10: tolerate extra SP
  const sp1 = line.indexOf(' ')
  const sp2 = sp1 < 0 ? -1 : line.indexOf(' ', sp1 + 1)
  const parts = sp2 > sp1 + 1 && line.indexOf(' ', sp2 + 1) < 0 && line.indexOf('\t') < 0
    ? [line.slice(0, sp1), line.slice(sp1 + 1, sp2), line.slice(sp2 + 1)]
    : line.split(/[ \t]+/)
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop()
  const method = parts[0]!
  for (let k = 0; k < method.length; k++) if (!isToken(method.charCodeAt(k))) throw new SipParseError('bad method')
  if (method.length === 0 || parts.length < 2) throw new SipParseError('bad request line')
  // from here on it looks enough like a request to deserve an answer (noise gets none: no reflection)
  st.kind = 'request'
  st.method = method
  // RFC 4475 §3.1.2.8: LWS inside the Request-URI splits it into more parts
  if (parts.length !== 3) throw new SipParseError('bad request line')
  checkVersion(parts[2]!, true)
  const rawUri = parts[1]!
  let uri
  try {
    uri = parseUri(rawUri)
  } catch (err) {
    throw new SipParseError(`Request-URI: ${(err as SipParseError).reason}`)
  }
  return { kind: 'request', method, uri, rawUri }
}

function checkVersion (v: string, request: boolean): void {
  if (v.length === 7 && v.toUpperCase() === 'SIP/2.0') return
  // RFC 3261 §21.5.6: a request of another SIP version gets 505
  if (request && /^SIP\/\d+\.\d+$/i.test(v)) throw new SipParseError(`unsupported version ${v}`, { status: 505 })
  throw new SipParseError('bad SIP version')
}

/** Splits header lines (unfolding continuation lines) and canonicalizes names. */
function readHeaderLines (text: string, from: number, st: ParseState): SipHeader[] {
  const headers: SipHeader[] = []
  st.headers = headers
  let error: SipParseError | undefined
  let cur: SipHeader | undefined
  let pos = from
  const len = text.length
  while (pos < len) {
    let eol = text.indexOf('\n', pos)
    if (eol < 0) eol = len
    const lineEnd = eol > pos && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol
    if (lineEnd === pos) {
      // the empty line ending the header section (only reached when lines end in bare LF)
      st.sawEmptyLine = true
      break
    }
    const c0 = text.charCodeAt(pos)
    if (c0 === 32 || c0 === 9) {
      // RFC 3261 §7.3.1: a line starting with whitespace continues the previous header
      if (cur === undefined) {
        error ??= new SipParseError('continuation line before the first header')
      } else {
        const cont = trimWs(text.slice(pos, lineEnd))
        if (cont.length > 0) cur.value = cur.value.length > 0 ? cur.value + ' ' + cont : cont
      }
    } else {
      // the colon is looked for within the line only: a datagram of colon-less lines must not cost O(n²)
      let colon = pos
      while (colon < lineEnd && text.charCodeAt(colon) !== 58) colon++
      if (colon === lineEnd) {
        error ??= new SipParseError('header line without ":"')
        cur = undefined
      } else {
        let nameEnd = colon
        while (nameEnd > pos && isWs(text.charCodeAt(nameEnd - 1))) nameEnd--
        const name = text.slice(pos, nameEnd)
        let ok = name.length > 0
        for (let k = 0; ok && k < name.length; k++) ok = isToken(name.charCodeAt(k))
        if (!ok) {
          error ??= new SipParseError('bad header name')
          cur = undefined
        } else {
          let vs = colon + 1
          let ve = lineEnd
          while (vs < ve && isWs(text.charCodeAt(vs))) vs++
          while (ve > vs && isWs(text.charCodeAt(ve - 1))) ve--
          cur = { name: canonicalHeaderName(name), value: text.slice(vs, ve) }
          headers.push(cur)
        }
      }
    }
    pos = eol + 1
  }
  if (error !== undefined) throw error
  return headers
}

/** Reads, one by one and ignoring failures, the fields a 400 answer needs. */
function collectPartial (st: ParseState): SipParseErrorPartial {
  const p: SipParseErrorPartial = {}
  if (st.kind !== undefined) p.kind = st.kind
  if (st.method !== undefined) p.method = st.method
  const hs = st.headers
  if (hs === undefined) return p
  p.headers = hs
  const vias: Via[] = []
  for (const h of hs) {
    if (h.name !== 'Via') continue
    try { readVias(h.value, vias) } catch { break }
  }
  if (vias.length > 0) p.vias = vias
  const first = (name: string): string | undefined => hs.find(h => h.name === name)?.value
  const attempt = <T>(name: string, f: (v: string) => T): T | undefined => {
    const v = first(name)
    if (v === undefined) return undefined
    try { return f(v) } catch { return undefined }
  }
  const callId = attempt('Call-ID', parseCallId)
  if (callId !== undefined) p.callId = callId
  const cseq = attempt('CSeq', parseCSeq)
  if (cseq !== undefined) p.cseq = cseq
  const from = attempt('From', v => parseNameAddr(v))
  if (from !== undefined) p.from = from
  const to = attempt('To', v => parseNameAddr(v))
  if (to !== undefined) p.to = to
  return p
}
