import type { Table } from '../store/index.js'

type Op<V> = { type: 'put', key: string, value: V } | { type: 'del', key: string }

/**
 * Group commit over one table: writes queue up while a batch is being written, then go as the next batch. Each
 * `write` resolves once the batch holding it is on disk (fsynced when `sync`), so an answer that waits for it
 * promises durability while many messages share one fsync.
 */
export class Journal<V> {
  private pending: Array<{ ops: Array<Op<V>>, resolve: () => void, reject: (err: unknown) => void }> = []
  private writing = false

  constructor (private readonly table: Pick<Table<V>, 'batch'>, private readonly sync: boolean) {}

  async write (ops: Array<Op<V>>): Promise<void> {
    if (ops.length === 0) return
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ ops, resolve, reject })
      if (!this.writing) void this.flush()
    })
  }

  private async flush (): Promise<void> {
    this.writing = true
    while (this.pending.length > 0) {
      const group = this.pending
      this.pending = []
      try {
        await this.table.batch(group.flatMap(g => g.ops), { sync: this.sync })
        for (const g of group) g.resolve()
      } catch (err) {
        for (const g of group) g.reject(err)
      }
    }
    this.writing = false
  }
}
