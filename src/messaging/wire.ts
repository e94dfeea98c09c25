import { isMessageId } from './ids.js'

/** Protocol ids (docs/protocols.md). */
export const MSG_PROTOCOL = '/m1/msg/1.0.0'
export const MAILBOX_PROTOCOL = '/m1/mailbox/1.0.0'

/** Largest frame on /m1/msg and /m1/mailbox: a batch of messages, bodies in base64. */
export const MAX_MSG_FRAME_BYTES = 1024 * 1024

/** A batch stops growing at this many body bytes (base64), so one frame stays well under the cap. */
export const BATCH_BODY_BYTES = 512 * 1024

/** Most messages in one `deliver`, `deposit` or `messages` frame. */
export const MAX_BATCH = 100

/** One message between nodes. */
export interface WireMessage {
  /** ULID-like id given by the node that accepted it */
  id: string
  /** sender: `login@<sending node name>` (or the address of an anonymous sender) */
  from: string
  /** receiver's login at the receiving node */
  to: string
  /** Content-Type as the sender gave it */
  type: string
  /** body, base64 */
  body: string
  /** epoch ms when the sending node accepted it */
  at: number
  /** the sender asked for a delivery notification */
  notify?: boolean
}

const TYPE_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*;[^\r\n]*)?$/
const ADDR_RE = /^[^\s@<>"]{1,128}@[A-Za-z0-9.:[\]-]{1,253}$/

/** The message of a frame, or a reason why it is unusable. */
export function readWireMessage (v: unknown, maxBodyBytes: number): WireMessage | string {
  if (v == null || typeof v !== 'object' || Array.isArray(v)) return 'not an object'
  const m = v as Record<string, unknown>
  if (!isMessageId(m.id)) return 'bad id'
  if (typeof m.from !== 'string' || !ADDR_RE.test(m.from)) return 'bad from'
  if (typeof m.to !== 'string' || m.to.length === 0 || m.to.length > 64) return 'bad to'
  if (typeof m.type !== 'string' || m.type.length > 256 || !TYPE_RE.test(m.type)) return 'bad type'
  if (typeof m.body !== 'string' || m.body.length > Math.ceil(maxBodyBytes / 3) * 4 + 4) return 'bad body'
  if (typeof m.at !== 'number' || !Number.isFinite(m.at)) return 'bad at'
  return { id: m.id, from: m.from, to: m.to, type: m.type, body: m.body, at: m.at, ...(m.notify === true ? { notify: true } : {}) }
}
