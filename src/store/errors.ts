import { M1Error } from '../core/index.js'

/** The data dir's LevelDB cannot be opened (most often: another process, the daemon, holds its lock). */
export class StoreLockedError extends M1Error {
  static override readonly name: string = 'StoreLockedError'
}

export class StoreError extends M1Error {
  static override readonly name: string = 'StoreError'
}
