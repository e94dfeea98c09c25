// A bounded map with approximate LRU eviction in O(1): two generations, the older dropped whole (the hashlru
// scheme). Deleting one by one from the front of a big Map leaves holes that every later front scan walks over,
// which made eviction cost tens of microseconds per insert at 100k entries.

/**
 * Holds between `generation` and `2 * generation` entries once full. `get` promotes an entry to the young
 * generation; `onDrop` sees each old generation as it is discarded.
 */
export class TwoGenerationMap<V> {
  private young = new Map<string, V>()
  private old = new Map<string, V>()

  constructor (private readonly generation: number, private readonly onDrop?: (dropped: Map<string, V>) => void) {}

  get size (): number { return this.young.size + this.old.size }

  get (key: string): V | undefined {
    const v = this.young.get(key)
    if (v !== undefined) return v
    const o = this.old.get(key)
    if (o === undefined) return undefined
    this.old.delete(key)
    this.insert(key, o)
    return o
  }

  /** Like get, without promoting. */
  peek (key: string): V | undefined {
    return this.young.get(key) ?? this.old.get(key)
  }

  set (key: string, value: V): void {
    if (this.young.has(key)) { this.young.set(key, value); return }
    this.old.delete(key)
    this.insert(key, value)
  }

  delete (key: string): void {
    this.young.delete(key)
    this.old.delete(key)
  }

  /** Removes every entry `test` returns true for. O(size): for an occasional sweep, not the hot path. */
  sweep (test: (value: V) => boolean): void {
    for (const map of [this.young, this.old]) {
      for (const [k, v] of map) if (test(v)) map.delete(k)
    }
  }

  private insert (key: string, value: V): void {
    if (this.young.size >= this.generation) {
      this.onDrop?.(this.old)
      this.old = this.young
      this.young = new Map()
    }
    this.young.set(key, value)
  }
}
