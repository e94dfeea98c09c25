import { afterEach, describe, expect, it } from 'vitest'
import { signRecord, canonicalJson, NameNotFoundError, type LoginRecord } from '../../../src/directory/index.js'
import { ed25519Keys } from '../../../src/p2p/index.js'
import { startDirNode, startNetwork, stopAllNodes, waitFor, type DirNode } from './network.js'

const enc = new TextEncoder()

async function rejected (nodes: DirNode[], reason: string): Promise<number> {
  let total = 0
  for (const n of nodes) {
    const text = await n.metrics.render()
    const m = new RegExp(`m1node_directory_records_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(text)
    total += m != null ? Number(m[1]) : 0
  }
  return total
}

describe('directory over a 21-node libp2p network on loopback', () => {
  let nodes: DirNode[] = []
  afterEach(async () => { await stopAllNodes(nodes); nodes = [] })

  it('publishes, resolves from nodes without a copy, searches, and refuses forged, owned, replayed and expired records', async () => {
    nodes = await startNetwork(20, {
      users: (i) => i === 3
        ? [{ login: 'alice', displayName: 'Alice Liddell', listed: true }, { login: 'hidden', displayName: 'Not Listed' }]
        : i === 5 ? [{ login: 'coca-cola', displayName: 'Coca-Cola Company', listed: true }] : []
    })
    const home = nodes[3]!
    const first = await home.directory.publishAll()
    expect(first).toBeGreaterThan(0)
    const aliceV1 = await home.p2p.localRecord(enc.encode('/m1/login/alice'))
    expect(aliceV1).toBeDefined()
    await home.directory.publishAll() // seq goes up: v1 is now an old record
    await nodes[5]!.directory.publishAll()

    // resolve on a node that did not publish and held no copy before asking
    const resolver = nodes[17]!
    const r = await resolver.directory.resolve('alice@node-3')
    expect(r.node?.peerId).toBe(home.p2p.peerId)
    expect(r.login?.displayName).toBe('Alice Liddell')
    const bare = await nodes[11]!.directory.resolve('coca-cola')
    expect(bare.login?.node).toBe('node-5')
    expect(bare.node?.peerId).toBe(nodes[5]!.p2p.peerId)
    expect((await nodes[12]!.directory.resolve('node-3')).node?.name).toBe('node-3')
    await expect(nodes[12]!.directory.resolveLogin('nobody')).rejects.toThrow(NameNotFoundError)

    // a node that joins after publication holds no copy, and still resolves
    const late = await startDirNode({ name: 'late', bootstrap: [nodes[9]!.p2p.addresses()[0]!] })
    nodes.push(late)
    expect(await late.p2p.localRecord(enc.encode('/m1/login/alice'))).toBeUndefined()
    await waitFor(() => late.p2p.routingTableSize >= 2, 10_000)
    expect((await late.directory.resolve('alice')).node?.peerId).toBe(home.p2p.peerId)

    // search by word, from a node that lists nothing
    const found = await nodes[14]!.directory.find('cola')
    expect(found.map(x => `${x.login}@${x.node}`)).toEqual(['coca-cola@node-5'])
    expect((await nodes[14]!.directory.find('liddell alice')).map(x => x.login)).toEqual(['alice'])
    expect(await nodes[14]!.directory.find('not listed')).toEqual([])

    // a malicious node joins and PUTs bad records straight through kad-dht (no local validation)
    const evil = await startDirNode({ name: 'evil', bootstrap: [nodes[0]!.p2p.addresses()[0]!] })
    nodes.push(evil)
    await waitFor(() => evil.p2p.routingTableSize >= 4, 10_000)
    const evilKeys = ed25519Keys(evil.privateKey)
    const key = enc.encode('/m1/login/alice')
    const current = (await home.p2p.localRecord(key))!
    const forged = JSON.parse(Buffer.from(current).toString())
    forged.displayName = 'Mallory'
    const now = Date.now()
    const owned = signRecord<LoginRecord>({ kind: 'login', name: 'alice', seq: Number.MAX_SAFE_INTEGER - 1, issuedAt: now, expiresAt: now + 3_600_000, node: 'evil', displayName: 'Alice (real)', listed: true }, evilKeys)
    const expired = signRecord<LoginRecord>({ kind: 'login', name: 'mallory', seq: 1, issuedAt: now - 7_200_000, expiresAt: now - 1000, node: 'evil', displayName: '', listed: false }, evilKeys)
    const attempts: Array<[string, Uint8Array, Uint8Array]> = [
      ['bad-signature', key, enc.encode(canonicalJson(forged))],
      ['owned', key, owned.bytes],
      ['replay', key, aliceV1!],
      ['expired', enc.encode('/m1/login/mallory'), expired.bytes]
    ]
    for (const [reason, k, value] of attempts) {
      const accepted = await evil.p2p.putRecord(k, value)
      // only a peer holding no record of the name (the late joiner) may take a validly signed one: first come
      if (reason === 'bad-signature' || reason === 'expired') expect(accepted, reason).toBe(0)
      else expect(accepted, reason).toBeLessThanOrEqual(1)
      expect(await rejected(nodes.slice(0, 21), reason), reason).toBeGreaterThan(0)
    }
    // no honest node stored any of them
    for (const n of nodes.slice(0, 20)) { // the original network: each held alice's record
      const held = await n.p2p.localRecord(key)
      expect(Buffer.from(held!).equals(Buffer.from(current)), n.name).toBe(true)
      expect(await n.p2p.localRecord(enc.encode('/m1/login/mallory'))).toBeUndefined()
    }
    // the evil node now serves its own 'alice' (kept locally by its put): resolvers ignore it
    resolver.directory.clearCache()
    const again = await resolver.directory.resolveLogin('alice')
    expect(again.peerId).toBe(home.p2p.peerId)
    const fresh = nodes[19]!
    fresh.directory.clearCache()
    expect((await fresh.directory.resolveLogin('alice')).node).toBe('node-3')
  }, 90_000)

  it('a node restarts with the same peer id and records and is resolvable again', async () => {
    nodes = await startNetwork(6, { users: (i) => i === 2 ? [{ login: 'bob', displayName: 'Bob', listed: true }] : [] })
    const bob = nodes[2]!
    await bob.directory.publishAll()
    const peerId = bob.p2p.peerId
    const { dir, privateKey } = bob
    await bob.stop()
    nodes.splice(2, 1)
    const back = await startDirNode({ name: 'node-2', dir, privateKey, bootstrap: [nodes[0]!.p2p.addresses()[0]!], users: [{ login: 'bob', displayName: 'Bob', listed: true }] })
    nodes.push(back)
    expect(back.p2p.peerId).toBe(peerId)
    // its DHT datastore survived the restart
    expect(await back.p2p.localRecord(enc.encode('/m1/node/node-2'))).toBeDefined()
    await waitFor(() => back.p2p.routingTableSize >= 2, 10_000)
    await back.directory.publishAll()
    const other = nodes[4]!
    other.directory.clearCache()
    const r = await other.directory.resolve('bob')
    expect(r.login?.peerId).toBe(peerId)
    expect(r.node?.addrs.some(a => back.p2p.addresses().includes(a))).toBe(true)
  }, 30_000)
})
