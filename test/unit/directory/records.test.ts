import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ed25519Keys, type Ed25519Keys } from '../../../src/p2p/index.js'
import {
  RecordRejectedError, RecordValidator, canonicalJson, checkOwnership, decodeRecord, parseRecordKey, recordKey, selectRecord, signRecord,
  MAX_RECORD_BYTES, isDomainName, type DomainRecord, type LoginRecord, type NodeRecord
} from '../../../src/directory/index.js'
import { foldName, nameProblem, tryNormalizeName } from '../../../src/core/index.js'
import { normalizeLogin } from '../../../src/users/index.js'

const enc = new TextEncoder()
const keys = async (): Promise<Ed25519Keys> => ed25519Keys(await generateKeyPair('Ed25519'))

function login (k: Ed25519Keys, over: Partial<LoginRecord> = {}, now = Date.now()): { record: LoginRecord, bytes: Uint8Array, key: string } {
  return signRecord<LoginRecord>({ kind: 'login', name: 'alice', seq: 1, issuedAt: now, expiresAt: now + 3_600_000, node: 'acme', displayName: 'Alice', listed: true, ...over }, k)
}

function reason (fn: () => unknown): string {
  try { fn() } catch (err) { if (err instanceof RecordRejectedError) return err.reason; throw err }
  return 'accepted'
}

/** Re-signs a tampered body so only the field under test is wrong. */
function tamper (bytes: Uint8Array, change: (r: Record<string, unknown>) => void): Uint8Array {
  const r = JSON.parse(Buffer.from(bytes).toString('utf8'))
  change(r)
  return enc.encode(canonicalJson(r))
}

describe('names', () => {
  it('folds and checks the shared rule', () => {
    expect(tryNormalizeName('Coca-Cola')).toBe('coca-cola')
    expect(tryNormalizeName('ｃｏｃａ')).toBe('coca') // fullwidth folds under NFKC
    expect(tryNormalizeName('cоca')).toBeUndefined() // Cyrillic о
    expect(tryNormalizeName('co\u200bca')).toBeUndefined() // zero-width space
    expect(tryNormalizeName('xn--80ak6aa92e')).toBeUndefined() // punycode
    expect(tryNormalizeName('a')).toBeUndefined()
    expect(tryNormalizeName('a..b')).toBeUndefined()
    expect(tryNormalizeName('ab-')).toBeUndefined()
    expect(nameProblem(foldName('Node-1'))).toBeUndefined()
    expect(normalizeLogin('Alice')).toBe('alice')
    expect(() => normalizeLogin('xn--abc')).toThrow()
  })
})

describe('records', () => {
  it('signs, encodes canonically and decodes', async () => {
    const k = await keys()
    const { record, bytes, key } = login(k)
    expect(key).toBe('/m1/login/alice')
    expect(Buffer.from(bytes).toString()).toBe(canonicalJson(record))
    const back = decodeRecord(key, bytes)
    expect(back).toEqual(record)
    expect(back.peerId).toBe(k.peerId)
    const node = signRecord<NodeRecord>({ kind: 'node', name: 'acme', seq: 1, issuedAt: Date.now(), expiresAt: Date.now() + 60_000, domains: ['acme'], addrs: ['/ip4/127.0.0.1/tcp/1'], relays: [], mailboxes: [], version: 'm1node/0' }, k)
    expect(decodeRecord(node.key, node.bytes).kind).toBe('node')
  })

  it('canonical JSON sorts keys and refuses non-integers', () => {
    expect(canonicalJson({ b: 1, a: [true, 'x', { d: null, c: 2 }] })).toBe('{"a":[true,"x",{"c":2,"d":null}],"b":1}')
    expect(() => canonicalJson({ a: 1.5 })).toThrow(RecordRejectedError)
  })

  it('parses keys and refuses bad ones', () => {
    expect(parseRecordKey('/m1/node/acme')).toEqual({ kind: 'node', name: 'acme' })
    expect(reason(() => parseRecordKey('/m1/user/acme'))).toBe('bad-key')
    expect(reason(() => parseRecordKey('/m1/node/Acme'))).toBe('bad-name')
    expect(reason(() => parseRecordKey('/m1/login/cоca'))).toBe('bad-name')
  })

  it('rejects forged, tampered, expired, oversized, malformed and mismatched records', async () => {
    const k = await keys()
    const other = await keys()
    const now = Date.now()
    const { bytes, key } = login(k)
    // forged: content changed after signing
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { r.displayName = 'Mallory' })))).toBe('bad-signature')
    // wrong key: the public key of another node with the original peer id
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { r.publicKey = Buffer.from(other.publicKey).toString('base64url') })))).toBe('key-mismatch')
    // signed under another key (record moved to another name)
    expect(reason(() => decodeRecord('/m1/login/bob', tamper(bytes, r => { r.name = 'bob' })))).toBe('bad-signature')
    expect(reason(() => decodeRecord('/m1/login/bob', bytes))).toBe('bad-name')
    expect(reason(() => decodeRecord('/m1/node/alice', bytes))).toBe('bad-key')
    // expired
    const old = login(k, { issuedAt: now - 7_200_000, expiresAt: now - 1 })
    expect(reason(() => decodeRecord(key, old.bytes))).toBe('expired')
    expect(decodeRecord(key, old.bytes, { allowExpired: true }).name).toBe('alice')
    // issued in the future, or living too long
    expect(reason(() => decodeRecord(key, login(k, { issuedAt: now + 3_600_000, expiresAt: now + 7_200_000 }).bytes))).toBe('not-yet-valid')
    expect(reason(() => decodeRecord(key, login(k, { expiresAt: now + 30 * 86_400_000 }).bytes))).toBe('too-long-lived')
    // oversized
    expect(reason(() => decodeRecord(key, new Uint8Array(MAX_RECORD_BYTES + 1)))).toBe('oversized')
    // malformed and non-canonical
    expect(reason(() => decodeRecord(key, enc.encode('not json')))).toBe('malformed')
    expect(reason(() => decodeRecord(key, enc.encode('[1]')))).toBe('malformed')
    expect(reason(() => decodeRecord(key, enc.encode(JSON.stringify(JSON.parse(Buffer.from(bytes).toString()), null, 1))))).toBe('non-canonical')
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { r.extra = 1 })))).toBe('bad-field')
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { delete r.sig })))).toBe('bad-field')
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { r.listed = 'yes' })))).toBe('bad-field')
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { r.node = 'ACME' })))).toBe('bad-name')
    expect(reason(() => decodeRecord(key, tamper(bytes, r => { r.sig = 'AAAA' })))).toBe('bad-signature')
  })

  it('domain records: /m1/domain/<sip domain> names a node; addresses and dotless names are refused; first come owns it', async () => {
    const k = await keys()
    const other = await keys()
    const now = Date.now()
    const domain = (kk: Ed25519Keys, over: Partial<DomainRecord> = {}): { record: DomainRecord, bytes: Uint8Array, key: string } =>
      signRecord<DomainRecord>({ kind: 'domain', name: 'voice.acme.test', seq: 1, issuedAt: now, expiresAt: now + 3_600_000, node: 'acme', ...over }, kk)
    const d = domain(k)
    expect(d.key).toBe('/m1/domain/voice.acme.test')
    expect(decodeRecord(d.key, d.bytes)).toEqual(d.record)
    expect(parseRecordKey('/m1/domain/voice.acme.test')).toEqual({ kind: 'domain', name: 'voice.acme.test' })
    expect(reason(() => parseRecordKey('/m1/domain/127.0.0.1'))).toBe('bad-name')
    expect(reason(() => parseRecordKey('/m1/domain/acme'))).toBe('bad-name')
    expect(reason(() => parseRecordKey('/m1/domain/Voice.Acme.test'))).toBe('bad-name')
    expect(isDomainName('voice.acme.test')).toBe(true)
    expect(isDomainName('10.0.0.1')).toBe(false)
    // the node field follows the name rule; no extra field; the signature covers the key
    expect(reason(() => decodeRecord(d.key, tamper(d.bytes, r => { r.node = 'Bad Name' })))).toBe('bad-name')
    expect(reason(() => decodeRecord(d.key, tamper(d.bytes, r => { r.addrs = [] })))).toBe('bad-field')
    expect(reason(() => decodeRecord('/m1/domain/other.acme.test', tamper(d.bytes, r => { r.name = 'other.acme.test' })))).toBe('bad-signature')
    const theirs = domain(other, { node: 'evil', seq: 9 })
    expect(reason(() => { checkOwnership(d.record, d.bytes, theirs.record, theirs.bytes, now) })).toBe('owned')
  })

  it('enforces first-come ownership and replay rules', async () => {
    const k = await keys()
    const other = await keys()
    const now = Date.now()
    const held = login(k, { seq: 5 })
    const mine6 = login(k, { seq: 6 })
    const mine4 = login(k, { seq: 4 })
    const mine5b = login(k, { seq: 5, displayName: 'Changed' })
    const theirs = login(other, { seq: 99 })
    const check = (o: { record: LoginRecord, bytes: Uint8Array }, h = held): string => reason(() => { checkOwnership(h.record, h.bytes, o.record, o.bytes, now) })
    expect(check(mine6)).toBe('accepted')
    expect(check(held)).toBe('accepted') // identical re-put
    expect(check(mine4)).toBe('replay')
    expect(check(mine5b)).toBe('replay')
    expect(check(theirs)).toBe('owned')
    // an expired holder no longer protects the name
    const expired = login(k, { seq: 5, issuedAt: now - 7_200_000, expiresAt: now - 1 })
    expect(check(theirs, expired)).toBe('accepted')
    expect(reason(() => { checkOwnership(undefined, undefined, theirs.record, theirs.bytes, now) })).toBe('accepted')
  })

  it('the validator applies ownership to PUTs only, and counts rejections', async () => {
    const k = await keys()
    const other = await keys()
    const held = login(k, { seq: 5 })
    const counted: string[] = []
    const metrics = { counter: () => ({ inc: (l?: Record<string, string>) => { counted.push(l?.reason ?? '') } }) } as any
    const v = new RecordValidator({ localRecord: async () => held.bytes, metrics })
    const theirs = login(other, { seq: 9 })
    await expect(v.validate(enc.encode(theirs.key), theirs.bytes, { from: 'peer' })).rejects.toThrow(RecordRejectedError)
    await v.validate(enc.encode(theirs.key), theirs.bytes, {}) // a value read back is only checked on its own
    await expect(v.validate(enc.encode(held.key), login(k, { seq: 4 }).bytes, { from: 'peer' })).rejects.toThrow(/replay/)
    expect(counted).toEqual(['owned', 'replay'])
  })

  it('selects: pinned key, then most holders, then first issued; highest seq within a key', async () => {
    const a = await keys()
    const b = await keys()
    const now = Date.now()
    const a1 = login(a, { seq: 1, issuedAt: now - 1000 }).record
    const a2 = login(a, { seq: 2 }).record
    const b1 = login(b, { seq: 7 }).record
    expect(selectRecord([])).toBe(-1)
    expect(selectRecord([{ record: a1 }, { record: a2 }])).toBe(1)
    expect(selectRecord([{ record: b1, holders: 3 }, { record: a2, holders: 1 }, { record: a1, holders: 1 }])).toBe(0)
    expect(selectRecord([{ record: b1, holders: 1 }, { record: a2, holders: 3 }])).toBe(1)
    // tie on holders: the key first issued wins
    expect(selectRecord([{ record: b1, holders: 2 }, { record: a1, holders: 2 }])).toBe(1)
    // a pinned key wins when present
    expect(selectRecord([{ record: b1, holders: 5 }, { record: a2, holders: 1 }], a2.publicKey)).toBe(1)
    const v = new RecordValidator({ localRecord: async () => undefined })
    const key = enc.encode('/m1/login/alice')
    expect(v.select(key, [enc.encode('garbage'), login(a, { seq: 1 }).bytes, login(a, { seq: 3 }).bytes])).toBe(2)
  })
})

describe('signing', () => {
  it('node:crypto signatures are the RFC 8032 signatures tweetnacl makes', async () => {
    const nacl = (await import('tweetnacl')).default
    const k = await keys()
    const msg = new TextEncoder().encode('m1-record/v1\n/m1/login/alice\n{}')
    const { sign } = await import('node:crypto')
    const ours = new Uint8Array(sign(null, msg, k.signingKey))
    expect(Buffer.from(ours).equals(Buffer.from(nacl.sign.detached(msg, k.secretKey)))).toBe(true)
  })
})
