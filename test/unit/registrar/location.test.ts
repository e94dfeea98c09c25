import { afterEach, describe, expect, it, vi } from 'vitest'
import { Location, type Binding } from '../../../src/registrar/index.js'
import type { Table } from '../../../src/store/index.js'

/** An in-memory Table: pure logic tests need no LevelDB. */
function memoryTable (): Table<Binding[]> & { data: Map<string, Binding[]>, batches: number } {
  const data = new Map<string, Binding[]>()
  const t = {
    data,
    batches: 0,
    get: async (k: string) => data.get(k),
    put: async (k: string, v: Binding[]) => { data.set(k, v) },
    del: async (k: string) => { data.delete(k) },
    entries: (async function * () { for (const e of [...data.entries()].sort()) yield e }) as Table<Binding[]>['entries'],
    batch: async (ops: Array<{ type: 'put', key: string, value: Binding[] } | { type: 'del', key: string }>) => {
      t.batches++
      for (const op of ops) op.type === 'put' ? data.set(op.key, op.value) : data.delete(op.key)
    }
  }
  return t
}

function binding (key: string, expiresAt: number, q = 1000): Binding {
  return {
    key, contact: `sip:${key}@127.0.0.1:5060`, contactParams: {}, q, expiresAt, callId: 'c', cseq: 1,
    flow: { transport: 'UDP', id: 'udp:127.0.0.1:5060', remoteAddress: '127.0.0.1', remotePort: 5060, localAddress: '127.0.0.1', localPort: 5060 },
    path: [], nat: false, updatedAt: 0
  }
}

describe('Location', () => {
  afterEach(() => { vi.useRealTimers() })

  it('writes the changes of one turn as one batch, serialising changes of the same AOR', async () => {
    const table = memoryTable()
    const loc = new Location({ table, sync: false })
    await loc.start()
    await Promise.all([
      loc.update('alice', cur => ({ bindings: [...cur, binding('a1', Date.now() + 60_000)], result: 1 })),
      loc.update('alice', cur => ({ bindings: [...cur, binding('a2', Date.now() + 60_000)], result: 2 })),
      loc.update('bob', cur => ({ bindings: [...cur, binding('b1', Date.now() + 60_000)], result: 3 }))
    ])
    expect(loc.lookup('alice').map(b => b.key).sort()).toEqual(['a1', 'a2'])
    expect(table.data.get('bob')).toHaveLength(1)
    expect(table.batches).toBeLessThanOrEqual(2)
    expect(loc.size).toBe(3)
    await loc.stop()
  })

  it('orders bindings by q and expires them on time, emitting contact:removed', async () => {
    vi.useFakeTimers({ now: 1_000_000 })
    const table = memoryTable()
    const loc = new Location({ table, sync: false })
    await loc.start()
    const removed: string[] = []
    loc.addEventListener('contact:removed', (e) => { removed.push(`${(e as CustomEvent).detail.binding.key}:${(e as CustomEvent).detail.reason}`) })
    const p = loc.update('alice', () => ({ bindings: [binding('low', 1_010_000, 100), binding('high', 1_030_000, 900)], result: undefined }))
    await vi.advanceTimersByTimeAsync(10)
    await p
    expect(loc.lookup('alice').map(b => b.key)).toEqual(['high', 'low'])
    await vi.advanceTimersByTimeAsync(11_000)
    expect(loc.lookup('alice').map(b => b.key)).toEqual(['high'])
    expect(removed).toEqual(['low:expired'])
    expect(table.data.get('alice')?.map(b => b.key)).toEqual(['high'])
    // a refresh moves the AOR to a later bucket: nothing expires at the old time
    const r = loc.update('alice', () => ({ bindings: [binding('high', 1_100_000, 900)], result: undefined }))
    await vi.advanceTimersByTimeAsync(10)
    await r
    await vi.advanceTimersByTimeAsync(25_000)
    expect(loc.lookup('alice')).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(70_000)
    expect(loc.lookup('alice')).toHaveLength(0)
    expect(table.data.has('alice')).toBe(false)
    expect(loc.size).toBe(0)
    await loc.stop()
  })

  it('loads what the store holds and drops what expired while it was down', async () => {
    const table = memoryTable()
    table.data.set('alice', [binding('live', Date.now() + 60_000), binding('dead', Date.now() - 1)])
    table.data.set('bob', [binding('dead', Date.now() - 1)])
    const loc = new Location({ table, sync: false })
    await loc.start()
    expect(loc.lookup('alice').map(b => b.key)).toEqual(['live'])
    expect(loc.lookup('bob')).toEqual([])
    expect(table.data.has('bob')).toBe(false)
    await loc.stop()
  })

  it('a failing change leaves the AOR as it was', async () => {
    const loc = new Location({ table: memoryTable(), sync: false })
    await loc.start()
    await loc.update('alice', () => ({ bindings: [binding('a', Date.now() + 60_000)], result: undefined }))
    await expect(loc.update('alice', () => { throw new Error('refused') })).rejects.toThrow('refused')
    expect(loc.lookup('alice')).toHaveLength(1)
    await loc.stop()
  })
})
