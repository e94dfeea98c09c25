// sip: the SIP stack (transport -> parse -> transactions) and its parts. Knows nothing of users, the DHT or calls.
// Public API: SipStack and the public API of message/, transport/, transaction/, dialog/, auth/ (import those through their own index).
export { SipStack, type SipStackComponents, type SipStackInit } from './stack.js'
