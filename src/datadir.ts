import { mkdir, readFile, writeFile, rename, rm, chmod } from 'node:fs/promises'
import { randomBytes, createHash } from 'node:crypto'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { ConfigError } from './core/index.js'

/**
 * The data dir: `identity.key` (libp2p ed25519 private key, protobuf, mode 600), `control.token` (bearer token of
 * the control API, mode 600), `config.toml` (written by `m1node init`), `store/` (LevelDB), `daemon.json` (where a
 * running daemon's control API listens; removed on clean stop).
 */
export const FILES = {
  identity: 'identity.key',
  token: 'control.token',
  config: 'config.toml',
  store: 'store',
  daemon: 'daemon.json'
} as const

export interface Identity { privateKey: PrivateKey, peerId: string }

export async function ensureDataDir (dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
  } catch (err: any) {
    throw new ConfigError('node.data_dir', `cannot create ${dir}: ${err?.code ?? err?.message}`)
  }
}

/** Loads the node identity, creating it on first use. */
export async function loadIdentity (dir: string): Promise<Identity & { created: boolean }> {
  const path = join(dir, FILES.identity)
  let created = false
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(await readFile(path))
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw new ConfigError('node.data_dir', `${path} is not a usable identity key: ${err?.message}`)
    privateKey = await generateKeyPair('Ed25519')
    await writeAtomic(path, Buffer.from(privateKeyToProtobuf(privateKey)), 0o600)
    created = true
  }
  return { privateKey, peerId: peerIdFromPrivateKey(privateKey).toString(), created }
}

/** Default node name, stable for an identity: `node-` and 10 hex digits of the public key's hash. */
export function defaultNodeName (identity: Identity): string {
  return 'node-' + createHash('sha256').update(identity.privateKey.publicKey.raw).digest('hex').slice(0, 10)
}

export async function loadToken (dir: string): Promise<string> {
  const path = join(dir, FILES.token)
  try {
    const t = (await readFile(path, 'utf8')).trim()
    if (t.length >= 32) return t
  } catch (err: any) {
    if (err?.code !== 'ENOENT') throw err
  }
  const token = randomBytes(32).toString('base64url')
  await writeAtomic(path, Buffer.from(token + '\n'), 0o600)
  return token
}

export async function readTokenIfAny (dir: string): Promise<string | undefined> {
  try { return (await readFile(join(dir, FILES.token), 'utf8')).trim() } catch { return undefined }
}

export interface DaemonInfo { pid: number, url: string, startedAt: number }

export async function writeDaemonInfo (dir: string, info: DaemonInfo): Promise<void> {
  await writeAtomic(join(dir, FILES.daemon), Buffer.from(JSON.stringify(info) + '\n'), 0o600)
}

export async function readDaemonInfo (dir: string): Promise<DaemonInfo | undefined> {
  try { return JSON.parse(await readFile(join(dir, FILES.daemon), 'utf8')) as DaemonInfo } catch { return undefined }
}

export async function removeDaemonInfo (dir: string): Promise<void> {
  await rm(join(dir, FILES.daemon), { force: true })
}

/** Write-then-rename so a crash never leaves half a file. */
export async function writeAtomic (path: string, data: Buffer, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, data, { mode })
  await chmod(tmp, mode)
  await rename(tmp, path)
}
