// p2p: the libp2p node (TCP, noise, yamux, identify, ping, kad-dht on /m1/kad/1.0.0, circuit relay v2, DCUtR), STUN, frames, peers.
// May import core only. Mechanism: knows nothing of names, records or SIP.
// Public API: P2p, RecordPolicy, RelayCaps, StunServer, KAD_PROTOCOL, frames (encodeFrame, FrameReader, writeFrame), keys, named errors.
export { P2p, KAD_PROTOCOL, type P2pEvents, decodeLibp2pRecordValue, type P2pComponents, type P2pInit, type RecordPolicy, type ValidationContext, type PeerInfo, type DhtValue, type GetResult } from './libp2p.js'
export { RelayCaps, RELAY_HOP_PROTOCOL, RELAY_STOP_PROTOCOL, RELAY_PROVIDER_TOKEN, type RelayServerInit } from './relay.js'
export { RelayFinder, type RelayFinderInit } from './relay-finder.js'
export { StunServer, parseBindingRequest, encodeBindingSuccess, decodeBindingSuccess, STUN_MAGIC_COOKIE, type StunServerInit } from './stun.js'
export { isPublicIp, isPublicMultiaddr } from './addresses.js'
export { dial, request, handleRequests, type RequestHandler, type HandleOptions, type RequestOptions } from './peers.js'
export { encodeFrame, decodeFrameBody, FrameReader, writeFrame, MAX_FRAME_BYTES } from './protocols/frames.js'
export { peerIdOfEd25519, ed25519Keys, type Ed25519Keys } from './keys.js'
export { libp2pLogger } from './log.js'
export * from './errors.js'
