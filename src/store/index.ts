// store: the node's LevelDB and the table of its sublevels. May import core only.
// Public API: Store, Table, StoreInit, SUBLEVELS, StoreLockedError, StoreError.
export { Store, type Table, type StoreInit, type StoreComponents } from './store.js'
export { SUBLEVELS, type SublevelName } from './layout.js'
export { StoreError, StoreLockedError } from './errors.js'
