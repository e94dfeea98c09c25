// sip/transaction: the RFC 3261 §17 transaction layer (ICT, NICT, IST, NIST with RFC 6026 'accepted') and its matching.
// May import: core/, sip/message/, sip/transport/types. Sends through an injected function; never touches sockets.
// Public API: TransactionLayer (+Components/Init), the contract types, DEFAULT_TIMER_VALUES, MachineState, named errors.
export type {
  TimerValues, TransactionState, ServerTransaction, ClientTransaction, ClientTransactionUser, TransactionUser, SendTarget
} from './types.js'
export { TransactionLayer, type TransactionLayerComponents, type TransactionLayerInit } from './layer.js'
export { DEFAULT_TIMER_VALUES } from './timers.js'
export type { MachineState, TransactionKind, TransactionResult } from './machine.js'
export { DuplicateTransactionError, InvalidTransactionRequestError, TransactionLayerStoppedError } from './errors.js'
