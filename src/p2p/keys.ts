import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { createPrivateKey, type KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'
import { P2pError } from './errors.js'

/** The peer id (base58 string) of a raw 32-byte Ed25519 public key; undefined when the bytes are not one. */
export function peerIdOfEd25519 (raw: Uint8Array): string | undefined {
  if (raw.length !== 32) return undefined
  try {
    return peerIdFromPublicKey(publicKeyFromRaw(raw)).toString()
  } catch {
    return undefined
  }
}

/**
 * The node key as a tweetnacl signing pair (secret key = seed || public key, 64 bytes), plus the same key as a
 * node:crypto KeyObject: OpenSSL signs in tens of microseconds where tweetnacl takes milliseconds, which matters
 * for a node republishing thousands of login records.
 */
export interface Ed25519Keys { publicKey: Uint8Array, secretKey: Uint8Array, peerId: string, signingKey: KeyObject }

/** PKCS#8 DER prefix of an Ed25519 private key (RFC 8410): the 32-byte seed follows. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Turns the node's libp2p Ed25519 private key into the raw pair tweetnacl signs with. */
export function ed25519Keys (privateKey: PrivateKey): Ed25519Keys {
  if (privateKey.type !== 'Ed25519') throw new P2pError(`node identity must be an Ed25519 key, not ${privateKey.type}`)
  const raw = privateKey.raw
  const pair = raw.length === 64 ? nacl.sign.keyPair.fromSecretKey(raw) : nacl.sign.keyPair.fromSeed(raw.subarray(0, 32))
  const publicKey = privateKey.publicKey.raw
  if (!Buffer.from(pair.publicKey).equals(Buffer.from(publicKey))) throw new P2pError('node identity key is inconsistent')
  const signingKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, Buffer.from(pair.secretKey.subarray(0, 32))]), format: 'der', type: 'pkcs8' })
  return { publicKey, secretKey: pair.secretKey, peerId: peerIdOfEd25519(publicKey)!, signingKey }
}
