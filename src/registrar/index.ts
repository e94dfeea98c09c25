// registrar: REGISTER policy (RFC 3261 §10) over the location service, and NAT keep-alives. May import core, sip (message types/helpers), store (types).
// Public API: Registrar, Location, Binding, Keepalive, named errors.
export { Registrar, type RegistrarInit, type RegistrarComponents } from './registrar.js'
export { Location, type Binding, type BindingFlow, type LocationEvents, type LocationComponents, type RemovalReason } from './location.js'
export { Keepalive, type KeepaliveInit, type KeepaliveComponents } from './keepalive.js'
export * from './errors.js'
