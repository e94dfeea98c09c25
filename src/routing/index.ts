// routing: request_route (sanity -> in-dialog -> dispatch) and the one error -> SIP status table. May import core, sip, registrar, users (errors and types).
// Public API: Router, errorResponse, ALLOW.
export { Router, type RouterComponents, type RouterInit } from './router.js'
export { errorResponse, ALLOW } from './sip-errors.js'
