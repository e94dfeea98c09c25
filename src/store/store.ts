import { Level } from 'level'
import type { Logger } from '../core/index.js'
import { StoreError, StoreLockedError } from './errors.js'
import { SUBLEVELS, type SublevelName } from './layout.js'

// classic-level honours `sync` on sublevel writes (they are forwarded to the parent); the sublevel typings omit it.
function writeOptions (opts?: { sync?: boolean }): object {
  return { sync: opts?.sync ?? false }
}

/** A typed JSON key-value space inside the store. */
export interface Table<V> {
  get(key: string): Promise<V | undefined>
  put(key: string, value: V, opts?: { sync?: boolean }): Promise<void>
  del(key: string, opts?: { sync?: boolean }): Promise<void>
  /** All entries in key order (optionally with keys >= gte, < lt). */
  entries(range?: { gte?: string, lt?: string, limit?: number }): AsyncIterable<[string, V]>
  /** Puts and deletes applied atomically. */
  batch(ops: Array<{ type: 'put', key: string, value: V } | { type: 'del', key: string }>, opts?: { sync?: boolean }): Promise<void>
}

export interface StoreInit {
  /** Directory of the LevelDB files. */
  path: string
  /**
   * fsync every write that a SIP reply acknowledges. Without it a write survives a killed process (LevelDB's log
   * is written before the reply) but not a power cut.
   * @default false
   */
  sync: boolean
}

export interface StoreComponents { logger?: Logger }

/** The node's LevelDB: opened first and closed last by node.ts. */
export class Store {
  private readonly db: Level<string, unknown>
  private readonly tables = new Map<string, Table<unknown>>()

  constructor (private readonly components: StoreComponents, private readonly init: StoreInit) {
    this.db = new Level<string, unknown>(init.path, { valueEncoding: 'json' })
  }

  async start (): Promise<void> {
    try {
      await this.db.open()
    } catch (err: any) {
      const code = err?.cause?.code ?? err?.code
      if (code === 'LEVEL_LOCKED') throw new StoreLockedError(`store ${this.init.path} is in use by another process`, { cause: err })
      throw new StoreError(`cannot open store ${this.init.path}: ${String(err?.cause?.message ?? err?.message)}`, { cause: err })
    }
    this.components.logger?.debug({ path: this.init.path }, 'store opened')
  }

  async stop (): Promise<void> {
    await this.db.close()
  }

  /** Whether writes acknowledged to a client are fsynced (see {@link StoreInit.sync}). */
  get sync (): boolean { return this.init.sync }

  table<V> (name: SublevelName): Table<V> {
    if (!(name in SUBLEVELS)) throw new StoreError(`unknown sublevel ${String(name)}`)
    let t = this.tables.get(name)
    if (t == null) {
      const sub = this.db.sublevel<string, V>(name, { valueEncoding: 'json' })
      t = {
        get: async (key) => await sub.get(key),
        put: async (key, value, opts) => { await sub.put(key, value, writeOptions(opts)) },
        del: async (key, opts) => { await sub.del(key, writeOptions(opts)) },
        entries: (range) => {
          const it = sub.iterator({ ...(range?.gte != null ? { gte: range.gte } : {}), ...(range?.lt != null ? { lt: range.lt } : {}), limit: range?.limit ?? -1 })
          return it as AsyncIterable<[string, V]>
        },
        batch: async (ops, opts) => { await sub.batch(ops, writeOptions(opts)) }
      } satisfies Table<V>
      this.tables.set(name, t as Table<unknown>)
    }
    return t as Table<V>
  }
}
