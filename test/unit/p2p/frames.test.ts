import { describe, expect, it } from 'vitest'
import { FrameError, FrameReader, decodeLibp2pRecordValue, encodeFrame } from '../../../src/p2p/index.js'

async function * chunks (parts: Uint8Array[]): AsyncGenerator<Uint8Array> { for (const p of parts) yield p }

describe('frames', () => {
  it('round-trips frames split across chunks', async () => {
    const a = encodeFrame({ type: 'search', query: 'coca' })
    const b = encodeFrame({ type: 'results', records: ['x'.repeat(300)] })
    const all = new Uint8Array([...a, ...b])
    const parts = [all.subarray(0, 1), all.subarray(1, 5), all.subarray(5, a.length + 2), all.subarray(a.length + 2)]
    const r = new FrameReader(chunks(parts))
    expect(await r.read()).toEqual({ type: 'search', query: 'coca' })
    expect((await r.read())?.type).toBe('results')
    expect(await r.read()).toBeUndefined()
  })
  it('refuses oversized, non-JSON, non-object and cut frames', async () => {
    await expect(new FrameReader(chunks([encodeFrame({ a: 'x'.repeat(200) })]), 100).read()).rejects.toThrow(FrameError)
    await expect(new FrameReader(chunks([new Uint8Array([0xff, 0xff, 0xff, 0x7f])])).read()).rejects.toThrow(FrameError)
    await expect(new FrameReader(chunks([new Uint8Array([3, 0x61, 0x62, 0x63])])).read()).rejects.toThrow(/JSON/)
    await expect(new FrameReader(chunks([new Uint8Array([2, 0x5b, 0x5d])])).read()).rejects.toThrow(/object/)
    await expect(new FrameReader(chunks([encodeFrame({ a: 1 }).subarray(0, 4)])).read()).rejects.toThrow(/inside a frame/)
    expect(() => encodeFrame({ a: 'x'.repeat(200) }, 100)).toThrow(FrameError)
  })
  it('honours an abort signal while waiting', async () => {
    const never = { [Symbol.asyncIterator]: () => ({ next: async () => await new Promise<IteratorResult<Uint8Array>>(() => {}) }) }
    const ctl = new AbortController()
    const p = new FrameReader(never).read({ signal: ctl.signal })
    ctl.abort(new Error('stop'))
    await expect(p).rejects.toThrow('stop')
  })
  it('reads the value of a libp2p DHT record', () => {
    // field 1 key "k", field 2 value "vv", field 5 time "t"
    const rec = new Uint8Array([0x0a, 1, 0x6b, 0x12, 2, 0x76, 0x76, 0x2a, 1, 0x74])
    expect(Buffer.from(decodeLibp2pRecordValue(rec)!).toString()).toBe('vv')
    expect(decodeLibp2pRecordValue(new Uint8Array([0x12, 9, 1]))).toBeUndefined()
  })
})
