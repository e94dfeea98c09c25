import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { SipRequest } from '../../../../src/sip/message/types.js'
import { clientUser, flow, harness, request, response, settle, target, T1 } from './fixtures.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

const invite = (o: Parameters<typeof request>[0] = {}): SipRequest => request({ method: 'INVITE', branch: 'z9hG4bK-inv', ...o })

describe('INVITE client transaction (RFC 3261 §17.1.1, RFC 6026)', () => {
  it('retransmits on Timer A, doubling without cap, until Timer B = 64*T1 (unreliable)', async () => {
    const h = harness()
    const user = clientUser()
    const tx = h.layer.request(invite(), target(), user)
    expect(tx.state).toBe('calling')
    // sends at 0, 500, 1500, 3500, 7500, 15500, 31500
    const at = [T1, 3 * T1, 7 * T1, 15 * T1, 31 * T1, 63 * T1]
    let now = 0
    for (const [i, t] of at.entries()) {
      await vi.advanceTimersByTimeAsync(t - 1 - now)
      expect(h.sent).toHaveLength(i + 1)
      await vi.advanceTimersByTimeAsync(1)
      expect(h.sent).toHaveLength(i + 2)
      now = t
    }
    await vi.advanceTimersByTimeAsync(64 * T1 - now - 1)
    expect(user.onTimeout).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(1)
    expect(user.onTimeout).toHaveBeenCalledTimes(1)
    expect(tx.state).toBe('terminated')
    expect(h.sent).toHaveLength(7)
    expect(h.wire().every((m) => m === 'INVITE')).toBe(true)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('does not retransmit on a reliable transport; Timer B still fires', async () => {
    const h = harness()
    const user = clientUser()
    h.layer.request(invite({ transport: 'TCP' }), target('TCP'), user)
    await vi.advanceTimersByTimeAsync(64 * T1)
    expect(h.sent).toHaveLength(1)
    expect(user.onTimeout).toHaveBeenCalledTimes(1)
  })

  it('stops retransmitting and Timer B on 1xx (proceeding waits for the TU)', async () => {
    const h = harness()
    const user = clientUser()
    const req = invite()
    const tx = h.layer.request(req, target(), user)
    h.layer.receiveResponse(response(req, 100, 'Trying'), flow())
    expect(tx.state).toBe('proceeding')
    h.layer.receiveResponse(response(req, 180, 'Ringing', { toTag: 'x' }), flow())
    expect(user.onResponse).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(10 * 64 * T1)
    expect(h.sent).toHaveLength(1)
    expect(user.onTimeout).not.toHaveBeenCalled()
    expect(tx.state).toBe('proceeding')
  })

  for (const from of ['calling', 'proceeding'] as const) {
    it(`ACKs a non-2xx final itself (from ${from}), re-ACKs its retransmissions, ends on Timer D = 32 s`, async () => {
      const h = harness()
      const user = clientUser()
      const req = invite({ routes: ['<sip:p1.example.test;lr>', '<sip:p2.example.test;lr>'], seq: 7 })
      const tx = h.layer.request(req, target(), user)
      if (from === 'proceeding') h.layer.receiveResponse(response(req, 180, 'Ringing', { toTag: 'tt' }), flow())
      const busy = response(req, 486, 'Busy Here', { toTag: 'tt' })
      h.layer.receiveResponse(busy, flow())
      expect(tx.state).toBe('completed')
      expect(user.onResponse).toHaveBeenLastCalledWith(busy, flow())
      expect(h.wire()).toEqual(['INVITE', 'ACK'])
      const sent = h.sent[1]
      expect(sent?.target).toEqual(target())
      const ack = sent?.msg as SipRequest
      // §17.1.1.3
      expect(ack.method).toBe('ACK')
      expect(ack.rawUri).toBe(req.rawUri)
      expect(ack.uri).toEqual(req.uri)
      expect(ack.callId).toBe(req.callId)
      expect(ack.from).toEqual(req.from)
      expect(ack.to.params.tag).toBe('tt')
      expect(ack.cseq).toEqual({ seq: 7, method: 'ACK' })
      expect(ack.vias).toHaveLength(1)
      expect(ack.vias[0]).toEqual(req.vias[0])
      expect(ack.body.length).toBe(0)
      const headers = ack.headers.map((x) => `${x.name}: ${x.value}`)
      expect(headers.filter((x) => x.startsWith('Via:'))).toEqual(['Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-inv;rport'])
      expect(headers.filter((x) => x.startsWith('Route:'))).toEqual(['Route: <sip:p1.example.test;lr>', 'Route: <sip:p2.example.test;lr>'])
      expect(headers).toContain('To: <sip:bob@example.test>;tag=tt')
      expect(headers).toContain('From: <sip:alice@example.test>;tag=ftag')
      expect(headers).toContain(`Call-ID: ${req.callId}`)
      expect(headers).toContain('CSeq: 7 ACK')
      expect(headers).toContain('Max-Forwards: 70')

      // retransmitted final: ACK again, TU not told again
      const calls = user.onResponse.mock.calls.length
      h.layer.receiveResponse(busy, flow())
      expect(h.wire()).toEqual(['INVITE', 'ACK', 'ACK'])
      expect(user.onResponse).toHaveBeenCalledTimes(calls)
      await vi.advanceTimersByTimeAsync(32_000 - 1)
      expect(tx.state).toBe('completed')
      expect(h.wire()).toEqual(['INVITE', 'ACK', 'ACK']) // no INVITE retransmission
      await vi.advanceTimersByTimeAsync(1)
      expect(tx.state).toBe('terminated')
      expect(h.layer.size).toBe(0)
      expect(user.onTimeout).not.toHaveBeenCalled()
    })
  }

  it('terminates at once after ACKing a non-2xx over a reliable transport (Timer D = 0)', () => {
    const h = harness()
    const user = clientUser()
    const req = invite({ transport: 'TCP' })
    const tx = h.layer.request(req, target('TCP'), user)
    h.layer.receiveResponse(response(req, 603, 'Decline', { toTag: 'tt' }), flow('TCP'))
    expect(h.wire()).toEqual(['INVITE', 'ACK'])
    expect(tx.state).toBe('terminated')
    expect(user.onResponse).toHaveBeenCalledTimes(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('passes 2xx to the TU, sends no ACK, and absorbs into accepted until Timer M = 64*T1', async () => {
    const h = harness()
    const user = clientUser()
    const req = invite()
    const tx = h.layer.request(req, target(), user)
    const ok = response(req, 200, 'OK', { toTag: 'a' })
    h.layer.receiveResponse(ok, flow())
    expect(tx.state).toBe('completed') // 'accepted' in the contract's vocabulary
    expect((tx as unknown as { phase: string }).phase).toBe('accepted')
    expect(h.wire()).toEqual(['INVITE']) // the TU ACKs a 2xx
    await vi.advanceTimersByTimeAsync(5 * T1)
    expect(h.wire()).toEqual(['INVITE']) // Timer A stopped
    // retransmissions and other forks' 2xx go to the TU; late non-2xx are dropped
    h.layer.receiveResponse(ok, flow())
    h.layer.receiveResponse(response(req, 200, 'OK', { toTag: 'b' }), flow())
    h.layer.receiveResponse(response(req, 486, 'Busy', { toTag: 'c' }), flow())
    h.layer.receiveResponse(response(req, 180, 'Ringing', { toTag: 'c' }), flow())
    expect(user.onResponse).toHaveBeenCalledTimes(3)
    expect(h.tu.onStrayResponse).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(64 * T1 - 5 * T1 - 1)
    expect(tx.state).toBe('completed')
    await vi.advanceTimersByTimeAsync(1)
    expect(tx.state).toBe('terminated')
    expect(user.onTimeout).not.toHaveBeenCalled()
    // after Timer M a 2xx retransmission is stray (the TU/dialog layer re-ACKs it)
    h.layer.receiveResponse(ok, flow())
    expect(h.tu.onStrayResponse).toHaveBeenCalledWith(ok, flow())
  })

  it('also enters accepted from proceeding', () => {
    const h = harness()
    const req = invite()
    const tx = h.layer.request(req, target(), clientUser())
    h.layer.receiveResponse(response(req, 183, 'Session Progress', { toTag: 'a' }), flow())
    h.layer.receiveResponse(response(req, 200, 'OK', { toTag: 'a' }), flow())
    expect((tx as unknown as { phase: string }).phase).toBe('accepted')
  })

  it('reports a transport error in calling and terminates', async () => {
    const h = harness()
    h.state.fail = true
    const user = clientUser()
    const tx = h.layer.request(invite(), target(), user)
    await settle()
    expect(user.onTransportError).toHaveBeenCalledTimes(1)
    expect(tx.state).toBe('terminated')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a failed ACK terminates without another TU event', async () => {
    const h = harness()
    const user = clientUser()
    const req = invite()
    const tx = h.layer.request(req, target(), user)
    h.state.fail = true
    h.layer.receiveResponse(response(req, 500, 'Server Error', { toTag: 'a' }), flow())
    await settle()
    expect(tx.state).toBe('terminated')
    expect(user.onResponse).toHaveBeenCalledTimes(1)
    expect(user.onTransportError).not.toHaveBeenCalled()
  })

  it('abort in proceeding terminates silently', async () => {
    const h = harness()
    const user = clientUser()
    const ac = new AbortController()
    const req = invite()
    const tx = h.layer.request(req, target(), user, { signal: ac.signal })
    h.layer.receiveResponse(response(req, 180, 'Ringing', { toTag: 'a' }), flow())
    ac.abort()
    expect(tx.state).toBe('terminated')
    h.layer.receiveResponse(response(req, 487, 'Request Terminated', { toTag: 'a' }), flow())
    expect(user.onResponse).toHaveBeenCalledTimes(1)
    expect(h.wire()).toEqual(['INVITE']) // no ACK from a terminated transaction
  })

  it('abort from inside the TU callback does not resurrect the transaction', () => {
    const h = harness()
    const ac = new AbortController()
    const user = clientUser()
    user.onResponse.mockImplementation(() => { ac.abort() })
    const req = invite()
    const tx = h.layer.request(req, target(), user, { signal: ac.signal })
    h.layer.receiveResponse(response(req, 180, 'Ringing'), flow())
    expect(tx.state).toBe('terminated')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('keeps an INVITE and a CANCEL with the same branch apart', () => {
    const h = harness()
    const inviteUser = clientUser()
    const cancelUser = clientUser()
    const req = invite()
    h.layer.request(req, target(), inviteUser)
    const cancel = request({ method: 'CANCEL', branch: 'z9hG4bK-inv' })
    h.layer.request(cancel, target(), cancelUser)
    expect(h.layer.size).toBe(2)
    h.layer.receiveResponse(response(cancel, 200, 'OK', { toTag: 'a' }), flow())
    expect(cancelUser.onResponse).toHaveBeenCalledTimes(1)
    expect(inviteUser.onResponse).not.toHaveBeenCalled()
    h.layer.receiveResponse(response(req, 487, 'Request Terminated', { toTag: 'a' }), flow())
    expect(inviteUser.onResponse).toHaveBeenCalledTimes(1)
    expect(h.wire()).toEqual(['INVITE', 'CANCEL', 'ACK'])
  })
})
