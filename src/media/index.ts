// media: the RTP relay behind three verbs (Kamailio rtpengine): offer / answer rewrite SDP to relay ports, delete frees them.
// May import: node built-ins, core/. Knows nothing of SIP transactions, dialogs or libp2p.
// Public API: MediaRelay (+ Init, Components, Events, Side, MediaStats, MediaOptions, PacketLink, AttachedLink), the SDP helpers, named errors.
export {
  MediaRelay,
  type MediaRelayInit,
  type MediaRelayComponents,
  type MediaRelayEvents,
  type MediaStats,
  type MediaOptions,
  type PacketLink,
  type AttachedLink,
  type Side
} from './relay.js'
export {
  parseSdp,
  serializeSdp,
  rewriteSdp,
  mediaEndpoints,
  nextVersion,
  MAX_MEDIA,
  type Sdp,
  type SdpMedia,
  type SdpOrigin,
  type SdpConnection,
  type MediaEndpoint,
  type RewritePlan,
  type Direction
} from './sdp.js'
export * from './errors.js'
