// messaging: store-and-forward text messages (RFC 3428 MESSAGE): durable acceptance, local delivery, the outbox to other nodes over /m1/msg/1.0.0, mailboxes (/m1/mailbox/1.0.0).
// May import core, sip (message helpers and types), store (types), registrar (types) and users; p2p, directory and routing's targets only as the narrow interfaces declared in messaging.ts.
// Public API: Messaging, MessageRecord, protocol ids, IMDN helpers, named errors.
export { Messaging, listMessages, type MessagingComponents, type MessagingInit, type MessageRecord, type MessageState, type NodeQueueState, type MailboxEntry, type MessagingNode } from './messaging.js'
export { MSG_PROTOCOL, MAILBOX_PROTOCOL, type WireMessage } from './wire.js'
export { MessageIds, idTime, isMessageId } from './ids.js'
export { imdnBody, IMDN_TYPE } from './imdn.js'
export { RateLimiter } from './rate-limit.js'
export * from './errors.js'
