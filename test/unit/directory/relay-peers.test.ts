import { describe, expect, it } from 'vitest'
import { relayPeersOf } from '../../../src/directory/directory.js'

describe('relayPeersOf: the mailboxes a NATed node publishes are its relays', () => {
  const relay = '12D3KooWJkJY4rbsJQvcGVade6qe7kh2ftP5pZFWkh4pagg2yBCb'
  const self = '12D3KooWJVPMjD2dxxfiPym1XfomAuxNdMzGCAy5qohRUuZTy8JS'

  it('reads relay addresses as P2p.relayAddresses() gives them (the part before /p2p-circuit)', () => {
    expect(relayPeersOf([`/ip4/11.22.33.10/tcp/4001/p2p/${relay}`])).toEqual([relay])
  })

  it('reads whole circuit addresses, and skips addresses that name no peer', () => {
    expect(relayPeersOf([`/ip4/11.22.33.10/tcp/4001/p2p/${relay}/p2p-circuit/p2p/${self}`, '/ip4/11.22.33.10/tcp/4001'])).toEqual([relay])
  })
})
