import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { ed25519Keys, type Ed25519Keys } from '../../../src/p2p/index.js'
import { RecordRejectedError, canonicalJson, checkOwnership, decodeRecord, parseRecordKey, signRecord, type DidRecord } from '../../../src/directory/index.js'

const keys = async (): Promise<Ed25519Keys> => ed25519Keys(await generateKeyPair('Ed25519'))

function did (k: Ed25519Keys, over: Partial<DidRecord> = {}, now = Date.now()): { record: DidRecord, bytes: Uint8Array, key: string } {
  return signRecord<DidRecord>({ kind: 'did', name: '+15551234567', seq: 1, issuedAt: now, expiresAt: now + 3_600_000, node: 'acme', ...over }, k)
}

function reason (fn: () => unknown): string {
  try { fn() } catch (err) { if (err instanceof RecordRejectedError) return err.reason; throw err }
  return 'accepted'
}

describe('DID records (/m1/did/<E.164>)', () => {
  it('sign, decode and check like login records', async () => {
    const k = await keys()
    const { record, bytes, key } = did(k)
    expect(key).toBe('/m1/did/+15551234567')
    expect(decodeRecord(key, bytes)).toEqual(record)
    expect(parseRecordKey('/m1/did/+15551234567')).toEqual({ kind: 'did', name: '+15551234567' })
  })

  it('refuse keys that are no E.164 number, bad node names, extra fields and forged signatures', async () => {
    const k = await keys()
    for (const bad of ['/m1/did/15551234567', '/m1/did/+1234567890123456', '/m1/did/+1555-123', '/m1/did/+']) {
      expect(reason(() => parseRecordKey(bad)), bad).toBe('bad-name')
    }
    const { bytes, key } = did(k)
    const r = JSON.parse(Buffer.from(bytes).toString('utf8'))
    expect(reason(() => decodeRecord(key, new TextEncoder().encode(canonicalJson({ ...r, node: 'Bad Name' }))))).toBe('bad-name')
    expect(reason(() => decodeRecord(key, new TextEncoder().encode(canonicalJson({ ...r, login: 'acme' }))))).toBe('bad-field')
    expect(reason(() => decodeRecord(key, new TextEncoder().encode(canonicalJson({ ...r, node: 'other' }))))).toBe('bad-signature')
    // a record signed for one number does not validate under another key
    expect(reason(() => decodeRecord('/m1/did/+15550000000', bytes))).toBe('bad-name')
  })

  it('first come: a live DID record under another key keeps the number', async () => {
    const owner = await keys()
    const thief = await keys()
    const held = did(owner)
    const offered = did(thief, { seq: 5 })
    expect(reason(() => checkOwnership(held.record, held.bytes, offered.record, offered.bytes))).toBe('owned')
    const later = did(owner, { seq: 2 })
    expect(reason(() => checkOwnership(held.record, held.bytes, later.record, later.bytes))).toBe('accepted')
  })
})
