import { createPublicKey, sign as cryptoSign, verify as verifySignature, type KeyObject } from 'node:crypto'
import { foldName, nameProblem } from '../core/index.js'
import { peerIdOfEd25519, type Ed25519Keys } from '../p2p/index.js'
import { RecordRejectedError } from './errors.js'

/**
 * Directory records (docs/dht-records.md): `/m1/node/<node-name>`, `/m1/login/<login>` and `/m1/domain/<sip-domain>`,
 * each a canonical JSON object signed with the node's Ed25519 key.
 */

export type RecordKind = 'node' | 'login' | 'domain'

/** Fields every record carries. */
export interface RecordCommon {
  v: 1
  kind: RecordKind
  /** the name in the key, already folded (core/names.ts) */
  name: string
  /** peer id of the signing node; must be the peer id of `publicKey` */
  peerId: string
  /** raw 32-byte Ed25519 public key, base64url without padding */
  publicKey: string
  /** higher replaces lower for the same key */
  seq: number
  /** unix milliseconds */
  issuedAt: number
  /** unix milliseconds */
  expiresAt: number
  /** Ed25519 signature, base64url without padding */
  sig: string
}

export interface NodeRecord extends RecordCommon {
  kind: 'node'
  /** SIP domains served by the node */
  domains: string[]
  /** libp2p multiaddrs of the node */
  addrs: string[]
  /** relay multiaddrs (NAT traversal) */
  relays: string[]
  /** peer ids that keep mail for the node while it is offline */
  mailboxes: string[]
  /** software and version, e.g. `m1node/0.1.0` */
  version: string
}

export interface LoginRecord extends RecordCommon {
  kind: 'login'
  /** home node name; the home node's peer id is `peerId` */
  node: string
  displayName: string
  /** whether the login may be found by directory search */
  listed: boolean
}

/** A SIP domain a node serves, so that `alice@<domain>` finds the node without having seen its node record. */
export interface DomainRecord extends RecordCommon {
  kind: 'domain'
  /** the node name serving the domain; its node record must be signed by `peerId` and list the domain */
  node: string
}

export type DirectoryRecord = NodeRecord | LoginRecord | DomainRecord
export type Unsigned<R extends DirectoryRecord> = Omit<R, 'sig' | 'publicKey' | 'peerId' | 'v'>

/** Largest encoded record, in bytes. */
export const MAX_RECORD_BYTES = 4096
/** Longest lifetime a record may claim (expiresAt - issuedAt). */
export const MAX_LIFETIME_MS = 7 * 86_400_000
/** Clock skew tolerated on issuedAt. */
export const MAX_SKEW_MS = 5 * 60_000
/** Domain separation of the signed bytes. */
export const SIGNING_PREFIX = 'm1-record/v1\n'

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

const COMMON = ['v', 'kind', 'name', 'peerId', 'publicKey', 'seq', 'issuedAt', 'expiresAt', 'sig']
const FIELDS: Record<RecordKind, string[]> = {
  node: [...COMMON, 'domains', 'addrs', 'relays', 'mailboxes', 'version'],
  login: [...COMMON, 'node', 'displayName', 'listed'],
  domain: [...COMMON, 'node']
}

/** The DHT key of a record: `/m1/<kind>/<name>`. */
export function recordKey (kind: RecordKind, name: string): string {
  return `/m1/${kind}/${name}`
}

/** Splits a DHT key; throws RecordRejectedError('bad-key') when it is not `/m1/node|login|domain/<name>`. */
export function parseRecordKey (key: string | Uint8Array): { kind: RecordKind, name: string } {
  let text: string
  try { text = typeof key === 'string' ? key : decoder.decode(key) } catch { throw new RecordRejectedError('bad-key', 'key is not UTF-8') }
  const m = /^\/m1\/(node|login|domain)\/([^/]+)$/.exec(text)
  if (m == null) throw new RecordRejectedError('bad-key', `unknown key ${text.slice(0, 80)}`)
  const name = m[2]!
  if (foldName(name) !== name || nameProblem(name) != null) throw new RecordRejectedError('bad-name', `${name.slice(0, 80)} breaks the name rule`)
  // an address is nobody's to claim
  if (m[1] === 'domain' && !isDomainName(name)) throw new RecordRejectedError('bad-name', `${name.slice(0, 80)} is not a domain name`)
  return { kind: m[1] as RecordKind, name }
}

/**
 * Canonical JSON: object keys sorted (they are ASCII, so by code unit), no whitespace, integers only, strings as
 * JSON.stringify writes them. Two encoders produce the same bytes for the same record.
 */
export function canonicalJson (value: unknown): string {
  if (value === null || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RecordRejectedError('bad-field', 'numbers must be safe integers')
    return String(value)
  }
  if (typeof value === 'string') return JSON.stringify(value)
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']'
  if (typeof value === 'object') {
    const keys = Object.keys(value).sort()
    return '{' + keys.map(k => JSON.stringify(k) + ':' + canonicalJson((value as Record<string, unknown>)[k])).join(',') + '}'
  }
  throw new RecordRejectedError('bad-field', `cannot encode ${typeof value}`)
}

/** The bytes a signature covers: the prefix, the DHT key, a newline, the canonical record without `sig`. */
export function signingBytes (key: string, record: Omit<DirectoryRecord, 'sig'> & { sig?: string }): Uint8Array {
  const { sig: _sig, ...body } = record
  return encoder.encode(SIGNING_PREFIX + key + '\n' + canonicalJson(body))
}

/** Signs a record with the node key (Ed25519, RFC 8032) and returns it with its encoded bytes. */
export function signRecord<R extends DirectoryRecord> (unsigned: Unsigned<R>, keys: Ed25519Keys): { record: R, bytes: Uint8Array, key: string } {
  const body = { ...unsigned, v: 1, peerId: keys.peerId, publicKey: b64u(keys.publicKey) } as unknown as Omit<R, 'sig'>
  const key = recordKey(body.kind, body.name)
  const sig = cryptoSign(null, signingBytes(key, body), keys.signingKey)
  const record = { ...body, sig: b64u(sig) } as R
  const bytes = encoder.encode(canonicalJson(record))
  if (bytes.length > MAX_RECORD_BYTES) throw new RecordRejectedError('oversized', `${bytes.length} bytes`)
  return { record, bytes, key }
}

export interface DecodeOptions {
  /** unix ms; default Date.now() */
  now?: number
  /** accept records whose expiry has passed (for reading pins) */
  allowExpired?: boolean
}

const keyCache = new Map<string, KeyObject>()
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex')

/**
 * Decodes and checks a record read from or offered to the DHT under `key`: size, UTF-8 JSON, canonical form, the
 * fields of its kind, name rule, key-owner consistency (public key -> peer id), signature, validity window. Throws
 * RecordRejectedError naming the reason. Signatures are checked with node:crypto (the same RFC 8032 Ed25519 as
 * tweetnacl, about eighty times faster), so a flood of forged records costs little.
 */
export function decodeRecord (key: string | Uint8Array, bytes: Uint8Array, options: DecodeOptions = {}): DirectoryRecord {
  const now = options.now ?? Date.now()
  const { kind, name } = parseRecordKey(key)
  const keyText = recordKey(kind, name)
  if (bytes.length > MAX_RECORD_BYTES) throw new RecordRejectedError('oversized', `${bytes.length} bytes > ${MAX_RECORD_BYTES}`)
  let text: string
  let value: unknown
  try {
    text = decoder.decode(bytes)
    value = JSON.parse(text)
  } catch {
    throw new RecordRejectedError('malformed', 'not UTF-8 JSON')
  }
  if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new RecordRejectedError('malformed', 'not a JSON object')
  const r = value as Record<string, unknown>
  if (r.v !== 1) throw new RecordRejectedError('malformed', `unknown version ${String(r.v)}`)
  if (r.kind !== kind) throw new RecordRejectedError('bad-key', `a ${String(r.kind)} record under a ${kind} key`)
  if (r.name !== name) throw new RecordRejectedError('bad-name', 'name differs from the key')
  const expected = FIELDS[kind]
  for (const f of Object.keys(r)) if (!expected.includes(f)) throw new RecordRejectedError('bad-field', `unknown field ${f.slice(0, 40)}`)
  for (const f of expected) if (!(f in r)) throw new RecordRejectedError('bad-field', `missing field ${f}`)
  if (canonicalJson(r) !== text) throw new RecordRejectedError('non-canonical', 'not in canonical form')

  for (const f of ['seq', 'issuedAt', 'expiresAt']) {
    if (typeof r[f] !== 'number' || !Number.isSafeInteger(r[f]) || (r[f] as number) < 0) throw new RecordRejectedError('bad-field', `${f} must be a non-negative integer`)
  }
  if (typeof r.peerId !== 'string' || typeof r.publicKey !== 'string' || typeof r.sig !== 'string') throw new RecordRejectedError('bad-field', 'peerId, publicKey and sig must be strings')
  if (kind === 'node') checkNodeFields(r)
  else if (kind === 'login') checkLoginFields(r)
  else checkNodeName(r)

  const pk = fromB64u(r.publicKey)
  if (pk == null || pk.length !== 32) throw new RecordRejectedError('bad-public-key', 'publicKey must be 32 bytes of base64url')
  if (peerIdOfEd25519(pk) !== r.peerId) throw new RecordRejectedError('key-mismatch', 'publicKey is not the key of peerId')
  const sig = fromB64u(r.sig)
  if (sig == null || sig.length !== 64) throw new RecordRejectedError('bad-signature', 'sig must be 64 bytes of base64url')
  if (!verifyEd25519(pk, signingBytes(keyText, r as unknown as DirectoryRecord), sig)) throw new RecordRejectedError('bad-signature', 'signature does not verify')

  const issuedAt = r.issuedAt as number
  const expiresAt = r.expiresAt as number
  if (issuedAt > now + MAX_SKEW_MS) throw new RecordRejectedError('not-yet-valid', 'issued in the future')
  if (expiresAt <= issuedAt || expiresAt - issuedAt > MAX_LIFETIME_MS) throw new RecordRejectedError('too-long-lived', 'lifetime must be 0-7 days')
  if (expiresAt <= now && options.allowExpired !== true) throw new RecordRejectedError('expired', `expired at ${new Date(expiresAt).toISOString()}`)
  return r as unknown as DirectoryRecord
}

/**
 * First-come ownership, applied by a storing peer to a PUT against the record it holds: a live record under another
 * key keeps the name; the same key must raise `seq` (an equal seq is accepted only for the identical record, a
 * harmless re-put). An expired held record no longer protects the name.
 */
export function checkOwnership (held: DirectoryRecord | undefined, heldBytes: Uint8Array | undefined, offered: DirectoryRecord, offeredBytes: Uint8Array, now = Date.now()): void {
  if (held == null || held.expiresAt <= now) return
  if (held.publicKey !== offered.publicKey) throw new RecordRejectedError('owned', `${held.kind} ${held.name} is owned by ${held.peerId}`)
  if (offered.seq < held.seq) throw new RecordRejectedError('replay', `seq ${offered.seq} below held ${held.seq}`)
  if (offered.seq === held.seq && !Buffer.from(offeredBytes).equals(Buffer.from(heldBytes ?? new Uint8Array()))) throw new RecordRejectedError('replay', `seq ${offered.seq} equals held seq with other content`)
}

/**
 * The selection rule among valid records of one name (docs/dht-records.md §Selection): group by public key; a key
 * pinned by the resolver wins when present; otherwise the key held by the most distinct peers; a tie goes to the
 * key whose best record was issued first, then to the smaller public key. Within the chosen key, the highest seq.
 * Returns the index of the chosen record, or -1 for an empty list.
 */
export function selectRecord (records: Array<{ record: DirectoryRecord, holders?: number }>, pinnedPublicKey?: string): number {
  if (records.length === 0) return -1
  const groups = new Map<string, { holders: number, best: number, firstIssued: number }>()
  records.forEach(({ record, holders }, i) => {
    const g = groups.get(record.publicKey)
    if (g == null) {
      groups.set(record.publicKey, { holders: holders ?? 1, best: i, firstIssued: record.issuedAt })
      return
    }
    g.holders += holders ?? 1
    g.firstIssued = Math.min(g.firstIssued, record.issuedAt)
    if (record.seq > records[g.best]!.record.seq) g.best = i
  })
  if (pinnedPublicKey != null) {
    const pinned = groups.get(pinnedPublicKey)
    if (pinned != null) return pinned.best
  }
  let chosen: [string, { holders: number, best: number, firstIssued: number }] | undefined
  for (const entry of groups) {
    if (chosen == null) { chosen = entry; continue }
    const [pk, g] = entry
    const [cpk, c] = chosen
    if (g.holders > c.holders || (g.holders === c.holders && (g.firstIssued < c.firstIssued || (g.firstIssued === c.firstIssued && pk < cpk)))) chosen = entry
  }
  return chosen![1].best
}

function checkNodeFields (r: Record<string, unknown>): void {
  const list = (f: string, max: number, each: number): void => {
    const v = r[f]
    if (!Array.isArray(v) || v.length > max || v.some(x => typeof x !== 'string' || x.length === 0 || x.length > each)) {
      throw new RecordRejectedError('bad-field', `${f} must be at most ${max} strings of 1-${each} characters`)
    }
  }
  list('domains', 8, 253)
  list('addrs', 16, 256)
  list('relays', 8, 256)
  list('mailboxes', 8, 128)
  if (typeof r.version !== 'string' || r.version.length > 64) throw new RecordRejectedError('bad-field', 'version must be a string of at most 64 characters')
}

/**
 * Whether a SIP domain may have a domain record: the name rule, at least one dot, and not an IPv4 literal (the
 * last label is not all digits).
 */
export function isDomainName (name: string): boolean {
  if (foldName(name) !== name || nameProblem(name) != null) return false
  const labels = name.split('.')
  return labels.length >= 2 && !/^\d+$/.test(labels[labels.length - 1]!)
}

function checkNodeName (r: Record<string, unknown>): void {
  if (typeof r.node !== 'string' || nameProblem(r.node) != null || foldName(r.node) !== r.node) throw new RecordRejectedError('bad-name', 'node breaks the name rule')
}

function checkLoginFields (r: Record<string, unknown>): void {
  checkNodeName(r)
  if (typeof r.displayName !== 'string' || r.displayName.length > 128 || /\p{Cc}/u.test(r.displayName)) throw new RecordRejectedError('bad-field', 'displayName must be at most 128 characters without control characters')
  if (typeof r.listed !== 'boolean') throw new RecordRejectedError('bad-field', 'listed must be true or false')
}

function verifyEd25519 (publicKey: Uint8Array, message: Uint8Array, sig: Uint8Array): boolean {
  const id = Buffer.from(publicKey).toString('base64')
  let k = keyCache.get(id)
  if (k == null) {
    try {
      k = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' })
    } catch {
      return false
    }
    if (keyCache.size > 10_000) keyCache.clear()
    keyCache.set(id, k)
  }
  try { return verifySignature(null, message, k, sig) } catch { return false }
}

/** base64url without padding. */
export function b64u (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64url')
}

function fromB64u (text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) return undefined
  const buf = Buffer.from(text, 'base64url')
  return b64u(buf) === text ? new Uint8Array(buf) : undefined
}
