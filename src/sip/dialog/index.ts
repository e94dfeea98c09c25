// sip/dialog: RFC 3261 §12 dialog state (identifiers, CSeq, remote target, route set, flow). Imports sip/message only.
// Public API: Dialog, LocalEnd.
export { Dialog, type LocalEnd } from './dialog.js'
