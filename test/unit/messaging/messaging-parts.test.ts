import { describe, expect, it } from 'vitest'
import { MessageIds, idTime, isMessageId, RateLimiter, imdnBody } from '../../../src/messaging/index.js'
import { Journal } from '../../../src/messaging/journal.js'
import { readWireMessage } from '../../../src/messaging/wire.js'

describe('message ids', () => {
  it('are 26 Crockford base32 characters, sorted in creation order within a millisecond and across', () => {
    const ids = new MessageIds()
    const list = [ids.next(1000), ids.next(1000), ids.next(1000), ids.next(999), ids.next(2000)]
    expect(list.every(isMessageId)).toBe(true)
    expect([...list].sort()).toEqual(list)
    expect(idTime(list[4]!)).toBe(2000)
    expect(idTime(list[3]!)).toBe(1000) // a clock stepping back keeps the order
    expect(isMessageId('not-an-id')).toBe(false)
  })
})

describe('rate limiter', () => {
  it('allows a burst, then the rate, and says how long to wait', () => {
    let now = 0
    const r = new RateLimiter({ burst: 2, perSecond: 2, now: () => now })
    expect(r.take('a')).toBe(0)
    expect(r.take('a')).toBe(0)
    expect(r.take('a')).toBe(500)
    expect(r.take('b')).toBe(0)
    now = 500
    expect(r.take('a')).toBe(0)
    expect(new RateLimiter({ burst: 1, perSecond: 0, now: () => 0 }).take('x')).toBe(0)
  })
})

describe('journal (group commit)', () => {
  it('writes queued operations as one batch while another is in flight, and resolves each when its batch is written', async () => {
    const batches: number[] = []
    let release!: () => void
    const table = {
      batch: async (ops: unknown[]) => {
        batches.push(ops.length)
        if (batches.length === 1) await new Promise<void>(resolve => { release = resolve })
      }
    }
    const j = new Journal<number>(table, true)
    const first = j.write([{ type: 'put', key: 'a', value: 1 }])
    const rest = [2, 3, 4].map(async v => await j.write([{ type: 'put', key: String(v), value: v }]))
    await new Promise(resolve => setTimeout(resolve, 10))
    release()
    await Promise.all([first, ...rest])
    expect(batches).toEqual([1, 3])
  })

  it('rejects every write of a failed batch', async () => {
    const j = new Journal<number>({ batch: async () => { throw new Error('disk full') } }, true)
    await expect(j.write([{ type: 'del', key: 'x' }])).rejects.toThrow('disk full')
  })
})

describe('wire messages', () => {
  const ok = { id: new MessageIds().next(), from: 'bob@node-a', to: 'alice', type: 'text/plain;charset=utf-8', body: 'aGk=', at: 1 }
  it('accepts a well-formed message and refuses malformed ones with a reason', () => {
    expect(readWireMessage(ok, 100)).toEqual(ok)
    expect(readWireMessage({ ...ok, id: 'x' }, 100)).toBe('bad id')
    expect(readWireMessage({ ...ok, from: 'no-at-sign' }, 100)).toBe('bad from')
    expect(readWireMessage({ ...ok, type: 'text' }, 100)).toBe('bad type')
    expect(readWireMessage({ ...ok, body: 'A'.repeat(1000) }, 100)).toBe('bad body')
    expect(readWireMessage([], 100)).toBe('not an object')
    expect(readWireMessage(null, 100)).toBe('not an object')
  })
})

describe('IMDN', () => {
  it('builds an RFC 5438 delivery notification with escaped fields', () => {
    const xml = imdnBody({ messageId: 'ID<1>', datetime: '2026-01-01T00:00:00.000Z', recipient: 'sip:alice@b', status: 'delivered' })
    expect(xml).toContain('<imdn xmlns="urn:ietf:params:xml:ns:imdn">')
    expect(xml).toContain('<message-id>ID&lt;1&gt;</message-id>')
    expect(xml).toContain('<delivery-notification><status><delivered/></status></delivery-notification>')
  })
})
