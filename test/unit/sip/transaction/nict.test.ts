import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { clientUser, flow, harness, request, response, settle, target, T1, T2, T4 } from './fixtures.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

describe('non-INVITE client transaction (RFC 3261 §17.1.2)', () => {
  it('sends the request at once and retransmits on Timer E, doubling up to T2 (unreliable)', async () => {
    const h = harness()
    const tx = h.layer.request(request({ method: 'OPTIONS' }), target(), clientUser())
    expect(tx.state).toBe('trying')
    expect(h.wire()).toEqual(['OPTIONS'])
    expect(h.sent[0]?.target).toEqual(target())
    // retransmissions at 500, 1500, 3500, 7500, 11500, 15500: intervals 500, 1000, 2000, 4000, 4000, 4000
    const at = [T1, 3 * T1, 7 * T1, 7 * T1 + T2, 7 * T1 + 2 * T2, 7 * T1 + 3 * T2]
    let now = 0
    for (const [i, t] of at.entries()) {
      await vi.advanceTimersByTimeAsync(t - 1 - now)
      expect(h.sent).toHaveLength(i + 1)
      await vi.advanceTimersByTimeAsync(1)
      expect(h.sent).toHaveLength(i + 2)
      now = t
    }
  })

  it('times out on Timer F = 64*T1, tells the TU once and stops retransmitting', async () => {
    const h = harness()
    const user = clientUser()
    const tx = h.layer.request(request({ method: 'OPTIONS' }), target(), user)
    await vi.advanceTimersByTimeAsync(64 * T1 - 1)
    expect(user.onTimeout).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(user.onTimeout).toHaveBeenCalledTimes(1)
    expect(tx.state).toBe('terminated')
    expect(h.layer.size).toBe(0)
    const count = h.sent.length
    await vi.advanceTimersByTimeAsync(100_000)
    expect(h.sent).toHaveLength(count)
    expect(vi.getTimerCount()).toBe(0)
    expect(user.onResponse).not.toHaveBeenCalled()
  })

  it('moves to proceeding on 1xx, then retransmits every T2', async () => {
    const h = harness()
    const user = clientUser()
    const req = request({ method: 'OPTIONS' })
    const tx = h.layer.request(req, target(), user)
    await vi.advanceTimersByTimeAsync(100)
    const trying = response(req, 180, 'Ringing')
    h.layer.receiveResponse(trying, flow())
    expect(tx.state).toBe('proceeding')
    expect(user.onResponse).toHaveBeenCalledWith(trying, flow())
    // Timer E set in trying still fires at 500, then is reset to T2
    await vi.advanceTimersByTimeAsync(400)
    expect(h.sent).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(T2 - 1)
    expect(h.sent).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(1)
    expect(h.sent).toHaveLength(3)
    await vi.advanceTimersByTimeAsync(T2)
    expect(h.sent).toHaveLength(4)
    // further provisionals go to the TU too
    h.layer.receiveResponse(response(req, 183), flow())
    expect(user.onResponse).toHaveBeenCalledTimes(2)
    expect(tx.state).toBe('proceeding')
    // F still bounds proceeding
    await vi.advanceTimersByTimeAsync(64 * T1)
    expect(user.onTimeout).toHaveBeenCalledTimes(1)
    expect(tx.state).toBe('terminated')
  })

  for (const from of ['trying', 'proceeding'] as const) {
    it(`goes from ${from} to completed on a final, absorbs its retransmissions, and ends on Timer K = T4`, async () => {
      const h = harness()
      const user = clientUser()
      const req = request({ method: 'OPTIONS' })
      const tx = h.layer.request(req, target(), user)
      if (from === 'proceeding') h.layer.receiveResponse(response(req, 100), flow())
      expect(tx.state).toBe(from)
      const ok = response(req, 200, 'OK', { toTag: 'tt' })
      h.layer.receiveResponse(ok, flow())
      expect(tx.state).toBe('completed')
      expect(user.onResponse).toHaveBeenLastCalledWith(ok, flow())
      const calls = user.onResponse.mock.calls.length
      const sent = h.sent.length
      h.layer.receiveResponse(ok, flow())
      expect(user.onResponse).toHaveBeenCalledTimes(calls)
      expect(h.tu.onStrayResponse).not.toHaveBeenCalled()
      await vi.advanceTimersByTimeAsync(T4 - 1)
      expect(tx.state).toBe('completed')
      expect(h.sent).toHaveLength(sent) // no retransmission once completed
      await vi.advanceTimersByTimeAsync(1)
      expect(tx.state).toBe('terminated')
      expect(h.layer.size).toBe(0)
      expect(user.onTimeout).not.toHaveBeenCalled()
      // after termination a late retransmission matches nothing
      h.layer.receiveResponse(ok, flow())
      expect(h.tu.onStrayResponse).toHaveBeenCalledTimes(1)
      expect(vi.getTimerCount()).toBe(0)
    })
  }

  it('does not retransmit on a reliable transport; Timer F still fires', async () => {
    const h = harness()
    const user = clientUser()
    h.layer.request(request({ method: 'OPTIONS', transport: 'TCP' }), target('TCP'), user)
    await vi.advanceTimersByTimeAsync(64 * T1 - 1)
    expect(h.sent).toHaveLength(1)
    expect(user.onTimeout).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(user.onTimeout).toHaveBeenCalledTimes(1)
  })

  it('terminates at once on a final over a reliable transport (Timer K = 0)', () => {
    const h = harness()
    const user = clientUser()
    const req = request({ method: 'OPTIONS', transport: 'TCP' })
    const tx = h.layer.request(req, target('TCP'), user)
    h.layer.receiveResponse(response(req, 404, 'Not Found'), flow('TCP'))
    expect(tx.state).toBe('terminated')
    expect(user.onResponse).toHaveBeenCalledTimes(1)
    expect(h.layer.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('reports a transport error once and terminates', async () => {
    const h = harness()
    h.state.fail = true
    const user = clientUser()
    const tx = h.layer.request(request({ method: 'OPTIONS' }), target(), user)
    await settle()
    expect(user.onTransportError).toHaveBeenCalledTimes(1)
    expect(user.onTransportError.mock.calls[0]?.[0]).toBeInstanceOf(Error)
    expect(tx.state).toBe('terminated')
    await vi.advanceTimersByTimeAsync(100_000)
    expect(user.onTimeout).not.toHaveBeenCalled()
    expect(user.onTransportError).toHaveBeenCalledTimes(1)
  })

  it('a transport error on a retransmission in proceeding is reported too', async () => {
    const h = harness()
    const user = clientUser()
    const req = request({ method: 'OPTIONS' })
    h.layer.request(req, target(), user)
    h.layer.receiveResponse(response(req, 100), flow())
    h.state.fail = true
    await vi.advanceTimersByTimeAsync(T1)
    expect(user.onTransportError).toHaveBeenCalledTimes(1)
    expect(h.layer.size).toBe(0)
  })

  it('abort stops retransmitting, terminates and reports nothing more', async () => {
    const h = harness()
    const user = clientUser()
    const ac = new AbortController()
    const req = request({ method: 'OPTIONS' })
    const tx = h.layer.request(req, target(), user, { signal: ac.signal })
    await vi.advanceTimersByTimeAsync(T1)
    expect(h.sent).toHaveLength(2)
    ac.abort()
    expect(tx.state).toBe('terminated')
    expect(h.layer.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(100_000)
    expect(h.sent).toHaveLength(2)
    h.layer.receiveResponse(response(req, 200), flow())
    expect(user.onResponse).not.toHaveBeenCalled()
    expect(user.onTimeout).not.toHaveBeenCalled()
  })

  it('an already aborted signal sends nothing', () => {
    const h = harness()
    const tx = h.layer.request(request({ method: 'OPTIONS' }), target(), clientUser(), { signal: AbortSignal.abort() })
    expect(tx.state).toBe('terminated')
    expect(h.sent).toHaveLength(0)
    expect(h.layer.size).toBe(0)
  })

  it('matches responses on branch and CSeq method only (§17.1.3)', () => {
    const h = harness()
    const user = clientUser()
    const req = request({ method: 'OPTIONS', branch: 'z9hG4bK-a' })
    h.layer.request(req, target(), user)
    const otherBranch = response(request({ method: 'OPTIONS', branch: 'z9hG4bK-b' }), 200)
    const otherMethod = response(request({ method: 'INFO', branch: 'z9hG4bK-a' }), 200)
    h.layer.receiveResponse(otherBranch, flow())
    h.layer.receiveResponse(otherMethod, flow())
    expect(user.onResponse).not.toHaveBeenCalled()
    expect(h.tu.onStrayResponse).toHaveBeenCalledTimes(2)
  })
})
