/** RFC 5438 §7.1: the IMDN document type. */
export const IMDN_TYPE = 'message/imdn+xml'

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/**
 * A delivery notification (RFC 5438 §7.2.1.1) for message `messageId` (the id the node gave it, sent to the
 * sender in `M1-Message-ID` of the 202). Sent as a bare message/imdn+xml body, not wrapped in CPIM.
 */
export function imdnBody (n: { messageId: string, datetime: string, recipient: string, status: 'delivered' | 'failed' }): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<imdn xmlns="urn:ietf:params:xml:ns:imdn">',
    `<message-id>${esc(n.messageId)}</message-id>`,
    `<datetime>${esc(n.datetime)}</datetime>`,
    `<recipient-uri>${esc(n.recipient)}</recipient-uri>`,
    `<original-recipient-uri>${esc(n.recipient)}</original-recipient-uri>`,
    `<delivery-notification><status><${n.status}/></status></delivery-notification>`,
    '</imdn>',
    ''
  ].join('\n')
}
