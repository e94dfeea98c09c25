import { formatUri } from './uri.js'
import type { SipMessage, SipRequest, SipUri } from './types.js'

/**
 * Writes a message: start line, `headers` in order (the parsed fields are not consulted: keep them in step with
 * setHeader & co), a Content-Length computed from the body in place of the first one (appended when there was
 * none), the empty line and the body. A request line carries `rawUri`: see {@link setRequestUri}.
 */
export function serialize (msg: SipMessage): Buffer {
  let head = msg.kind === 'request'
    ? msg.method + ' ' + msg.rawUri + ' SIP/2.0\r\n'
    : 'SIP/2.0 ' + msg.status + ' ' + msg.reason + '\r\n'
  let lengthDone = false
  const hs = msg.headers
  for (let k = 0; k < hs.length; k++) {
    const h = hs[k]!
    if (h.name === 'Content-Length') {
      if (lengthDone) continue
      head += 'Content-Length: ' + msg.body.length + '\r\n'
      lengthDone = true
      continue
    }
    head += h.name + ': ' + h.value + '\r\n'
  }
  if (!lengthDone) head += 'Content-Length: ' + msg.body.length + '\r\n'
  head += '\r\n'
  if (msg.body.length === 0) return Buffer.from(head, 'utf8')
  const headLen = Buffer.byteLength(head, 'utf8')
  const out = Buffer.allocUnsafe(headLen + msg.body.length)
  out.write(head, 0, 'utf8')
  msg.body.copy(out, headLen)
  return out
}

/** Retargets a request: sets `uri` and the `rawUri` that {@link serialize} writes. */
export function setRequestUri (req: SipRequest, uri: SipUri): void {
  req.uri = uri
  req.rawUri = formatUri(uri)
}
