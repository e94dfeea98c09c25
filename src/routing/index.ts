// routing: request_route (sanity -> in-dialog -> auth -> dispatch), the B2BUA, call records and the one error -> SIP status table.
// May import core, sip, store (types), registrar and users (errors and types).
// Public API: Router, B2bua, CallRecords, errorResponse, ALLOW, named errors.
export { Router, type RouterComponents, type RouterInit } from './router.js'
export { B2bua, type B2buaComponents, type B2buaInit, type MediaAnchor, type Caller, type Callee } from './b2bua.js'
export { CallRecords, type CallRecord, type CdrLeg } from './cdr.js'
export { errorResponse, ALLOW } from './sip-errors.js'
export * from './errors.js'
