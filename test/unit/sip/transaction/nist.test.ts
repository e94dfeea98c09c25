import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { ServerTransaction } from '../../../../src/sip/transaction/types.js'
import { flow, harness, request, response, settle, T1 } from './fixtures.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

function lastTx (h: ReturnType<typeof harness>): ServerTransaction {
  const tx = h.tu.onRequest.mock.lastCall?.[1]
  if (tx === undefined) throw new Error('no request reached the TU')
  return tx
}

describe('non-INVITE server transaction (RFC 3261 §17.2.2)', () => {
  it('hands a new request to the TU in trying and discards retransmissions there', () => {
    const h = harness()
    const req = request()
    h.layer.receiveRequest(req, flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(1)
    const tx = lastTx(h)
    expect(tx.state).toBe('trying')
    expect(tx.request).toBe(req)
    expect(tx.flow).toEqual(flow())
    h.layer.receiveRequest(request(), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(1)
    expect(h.sent).toHaveLength(0)
  })

  it('resends the last provisional to a retransmission in proceeding', () => {
    const h = harness()
    h.layer.receiveRequest(request(), flow())
    const tx = lastTx(h)
    tx.respond(response(tx.request, 100, 'Trying'))
    expect(tx.state).toBe('proceeding')
    tx.respond(response(tx.request, 183, 'Progress', { toTag: 'x' }))
    expect(h.wire()).toEqual([100, 183])
    h.layer.receiveRequest(request(), flow())
    expect(h.wire()).toEqual([100, 183, 183])
    expect(h.tu.onRequest).toHaveBeenCalledTimes(1)
  })

  for (const from of ['trying', 'proceeding'] as const) {
    it(`sends the final from ${from}, answers retransmissions with it, and ends on Timer J = 64*T1`, async () => {
      const h = harness()
      h.layer.receiveRequest(request(), flow())
      const tx = lastTx(h)
      if (from === 'proceeding') tx.respond(response(tx.request, 100, 'Trying'))
      tx.respond(response(tx.request, 200, 'OK', { toTag: 'x' }))
      expect(tx.state).toBe('completed')
      // responses go back on the request's flow (the transport applies rport)
      expect(h.sent.at(-1)?.target).toEqual({ transport: 'UDP', address: '127.0.0.1', port: 5062, flowId: 'udp:127.0.0.1:5062' })
      const n = h.sent.length
      h.layer.receiveRequest(request(), flow())
      expect(h.sent).toHaveLength(n + 1)
      expect(h.sent.at(-1)?.msg).toMatchObject({ status: 200 })
      // the TU cannot send a second final
      tx.respond(response(tx.request, 500, 'Oops', { toTag: 'x' }))
      expect(h.sent).toHaveLength(n + 1)
      await vi.advanceTimersByTimeAsync(64 * T1 - 1)
      expect(tx.state).toBe('completed')
      expect(h.sent).toHaveLength(n + 1) // no retransmission of its own
      await vi.advanceTimersByTimeAsync(1)
      expect(tx.state).toBe('terminated')
      expect(h.layer.size).toBe(0)
      // a request after J is a new transaction
      h.layer.receiveRequest(request(), flow())
      expect(h.tu.onRequest).toHaveBeenCalledTimes(2)
    })
  }

  it('terminates at once after the final on a reliable transport (Timer J = 0)', () => {
    const h = harness()
    h.layer.receiveRequest(request({ transport: 'TCP' }), flow('TCP'))
    const tx = lastTx(h)
    tx.respond(response(tx.request, 200, 'OK', { toTag: 'x' }))
    expect(h.wire()).toEqual([200])
    expect(tx.state).toBe('terminated')
    expect(h.sent[0]?.target).toEqual({ transport: 'TCP', address: '127.0.0.1', port: 5062, flowId: 'tcp:7' })
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a transport error on a response terminates the transaction', async () => {
    const h = harness()
    h.layer.receiveRequest(request(), flow())
    const tx = lastTx(h)
    h.state.fail = true
    tx.respond(response(tx.request, 200, 'OK', { toTag: 'x' }))
    await settle()
    expect(tx.state).toBe('terminated')
    expect(h.layer.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('tells apart requests by method and sent-by with the same branch', () => {
    const h = harness()
    h.layer.receiveRequest(request({ method: 'OPTIONS' }), flow())
    h.layer.receiveRequest(request({ method: 'INFO' }), flow())
    h.layer.receiveRequest(request({ method: 'OPTIONS', viaPort: 5099 }), flow())
    h.layer.receiveRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-2' }), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(4)
    expect(h.layer.size).toBe(4)
  })
})
