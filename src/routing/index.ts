// routing: request_route (sanity -> in-dialog -> auth -> dispatch), the B2BUA, call records, calls to other nodes (SIP over libp2p) and the one error -> SIP status table.
// May import core, sip, store (types), registrar and users (errors and types); p2p and directory only as the narrow interfaces declared here.
// Public API: Router, B2bua, CallRecords, RemoteTargets, P2pSipTransport, SIP_PROTOCOL, P2pMediaLinks, RTP_PROTOCOL, DirectPaths, ICE_PROTOCOL, errorResponse, ALLOW, named errors.
export { Router, type RouterComponents, type RouterInit } from './router.js'
export { B2bua, type B2buaComponents, type B2buaInit, type MediaAnchor, type RemoteMedia, type Caller, type Callee, type CallCap } from './b2bua.js'
export { P2pMediaLinks, RTP_PROTOCOL, RTP_SDP_ATTRIBUTE, MAX_RTP_PACKET_BYTES, tokenOf, withToken, withoutToken, type PacketStream, type P2pMediaComponents, type P2pMediaInit, type MediaPath, type MediaPathReport } from './p2p-media.js'
export { DirectPaths, ICE_PROTOCOL, type DirectPathsComponents, type DirectPathsInit } from './direct-paths.js'
export { CallRecords, type CallRecord, type CdrLeg } from './cdr.js'
export { errorResponse, ALLOW } from './sip-errors.js'
export * from './errors.js'
export { RemoteTargets, localLoginOf, type RemoteNode, type RemoteTargetsComponents, type NodeDirectory } from './targets.js'
export { P2pSipTransport, SIP_PROTOCOL, MAX_SIP_FRAME_BYTES, type P2pSipTransportComponents, type P2pSipTransportInit, type SipStream } from './p2p-transport.js'
export { PbxRouting, dialEscape, withUser, type PbxRoutingComponents, type PbxRoutingInit, type PbxDirectory } from './pbx.js'
export { UpstreamRegistrations, type UpstreamAccount, type UpstreamStatus, type UpstreamRegistrationsComponents, type UpstreamRegistrationsInit } from './upstream.js'
