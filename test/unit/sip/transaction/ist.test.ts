import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { SipRequest } from '../../../../src/sip/message/types.js'
import type { ServerTransaction } from '../../../../src/sip/transaction/types.js'
import { flow, harness, request, response, settle, T1, T2, T4 } from './fixtures.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

const invite = (o: Parameters<typeof request>[0] = {}): SipRequest => request({ method: 'INVITE', branch: 'z9hG4bK-inv', ...o })
const ackFor = (o: Parameters<typeof request>[0] = {}): SipRequest => request({ method: 'ACK', branch: 'z9hG4bK-inv', toTag: 'tt', ...o })

function lastTx (h: ReturnType<typeof harness>): ServerTransaction {
  const tx = h.tu.onRequest.mock.lastCall?.[1]
  if (tx === undefined) throw new Error('no request reached the TU')
  return tx
}

function phase (tx: ServerTransaction): string {
  return (tx as unknown as { phase: string }).phase
}

describe('INVITE server transaction (RFC 3261 §17.2.1, RFC 6026)', () => {
  it('sends 100 Trying at once and resends the latest provisional to retransmissions', () => {
    const h = harness()
    const req = invite({ callId: 'c-100' })
    h.layer.receiveRequest(req, flow())
    expect(h.wire()).toEqual([100])
    const trying = h.sent[0]?.msg
    expect(trying).toMatchObject({ kind: 'response', status: 100, reason: 'Trying', callId: 'c-100', cseq: req.cseq })
    expect(trying?.vias).toEqual(req.vias)
    expect(trying?.to.params.tag).toBeUndefined()
    const tx = lastTx(h)
    expect(tx.state).toBe('proceeding')
    h.layer.receiveRequest(invite({ callId: 'c-100' }), flow())
    expect(h.wire()).toEqual([100, 100])
    tx.respond(response(req, 180, 'Ringing', { toTag: 'tt' }))
    h.layer.receiveRequest(invite({ callId: 'c-100' }), flow())
    expect(h.wire()).toEqual([100, 100, 180, 180])
    expect(h.tu.onRequest).toHaveBeenCalledTimes(1)
  })

  it('retransmits a non-2xx final on Timer G (doubling to T2) and gives up on Timer H = 64*T1', async () => {
    const h = harness()
    h.layer.receiveRequest(invite(), flow())
    const tx = lastTx(h)
    tx.respond(response(tx.request, 486, 'Busy Here', { toTag: 'tt' }))
    expect(tx.state).toBe('completed')
    expect(h.wire()).toEqual([100, 486])
    // G: 500, 1000, 2000, 4000, 4000, ... → sends at 500, 1500, 3500, 7500, 11500, ...
    const at = [T1, 3 * T1, 7 * T1, 7 * T1 + T2, 7 * T1 + 2 * T2]
    let now = 0
    for (const [i, t] of at.entries()) {
      await vi.advanceTimersByTimeAsync(t - 1 - now)
      expect(h.sent).toHaveLength(i + 2)
      await vi.advanceTimersByTimeAsync(1)
      expect(h.sent).toHaveLength(i + 3)
      now = t
    }
    // a retransmitted INVITE gets the final again
    h.layer.receiveRequest(invite(), flow())
    expect(h.wire().at(-1)).toBe(486)
    await vi.advanceTimersByTimeAsync(64 * T1 - now - 1)
    expect(tx.state).toBe('completed')
    await vi.advanceTimersByTimeAsync(1)
    expect(tx.state).toBe('terminated')
    expect(h.layer.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    // 7500 + 4000*k up to 32000: 11500, 15500, 19500, 23500, 27500, 31500
    expect(h.wire().filter((s) => s === 486)).toHaveLength(1 + 10 + 1)
  })

  it('absorbs the ACK for a non-2xx into confirmed, absorbs its retransmissions, ends on Timer I = T4', async () => {
    const h = harness()
    h.layer.receiveRequest(invite(), flow())
    const tx = lastTx(h)
    tx.respond(response(tx.request, 404, 'Not Found', { toTag: 'tt' }))
    await vi.advanceTimersByTimeAsync(T1) // one G retransmission
    h.layer.receiveRequest(ackFor(), flow())
    expect(tx.state).toBe('confirmed')
    expect(h.tu.onAck).not.toHaveBeenCalled()
    const n = h.sent.length
    await vi.advanceTimersByTimeAsync(T2) // G stopped
    expect(h.sent).toHaveLength(n)
    h.layer.receiveRequest(ackFor(), flow())
    expect(h.tu.onAck).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(T4 - T2 - 1)
    expect(tx.state).toBe('confirmed')
    await vi.advanceTimersByTimeAsync(1)
    expect(tx.state).toBe('terminated')
    expect(vi.getTimerCount()).toBe(0)
    // once terminated, a late ACK goes to the TU
    h.layer.receiveRequest(ackFor(), flow())
    expect(h.tu.onAck).toHaveBeenCalledTimes(1)
  })

  it('on a reliable transport: no Timer G, H still 64*T1, I = 0', async () => {
    const h = harness()
    h.layer.receiveRequest(invite({ transport: 'TCP' }), flow('TCP'))
    const tx = lastTx(h)
    tx.respond(response(tx.request, 486, 'Busy Here', { toTag: 'tt' }))
    await vi.advanceTimersByTimeAsync(64 * T1 - 1)
    expect(h.wire()).toEqual([100, 486])
    h.layer.receiveRequest(ackFor({ transport: 'TCP' }), flow('TCP'))
    expect(tx.state).toBe('terminated')
    expect(h.tu.onAck).not.toHaveBeenCalled()
    expect(vi.getTimerCount()).toBe(0)

    h.layer.receiveRequest(invite({ transport: 'TCP', branch: 'z9hG4bK-2' }), flow('TCP'))
    const tx2 = lastTx(h)
    tx2.respond(response(tx2.request, 486, 'Busy Here', { toTag: 'tt' }))
    await vi.advanceTimersByTimeAsync(64 * T1)
    expect(tx2.state).toBe('terminated')
  })

  it('on 2xx goes to accepted: absorbs INVITE retransmissions, sends the TU\'s 2xx retransmissions, passes ACK to the TU, ends on Timer L', async () => {
    const h = harness()
    h.layer.receiveRequest(invite(), flow())
    const tx = lastTx(h)
    const ok = response(tx.request, 200, 'OK', { toTag: 'tt' })
    tx.respond(ok)
    expect(phase(tx)).toBe('accepted')
    expect(h.wire()).toEqual([100, 200])
    await vi.advanceTimersByTimeAsync(10 * T1)
    expect(h.wire()).toEqual([100, 200]) // the machine does not retransmit a 2xx
    h.layer.receiveRequest(invite(), flow())
    expect(h.wire()).toEqual([100, 200]) // absorbed
    expect(h.tu.onRequest).toHaveBeenCalledTimes(1)
    tx.respond(ok) // the TU's own retransmission
    tx.respond(response(tx.request, 500, 'Late', { toTag: 'tt' })) // not after a 2xx
    expect(h.wire()).toEqual([100, 200, 200])
    // ACK for 2xx: a new branch, not matched to the IST
    const ack = ackFor({ branch: 'z9hG4bK-ack' })
    h.layer.receiveRequest(ack, flow())
    expect(h.tu.onAck).toHaveBeenCalledWith(ack, flow())
    // even one reusing the INVITE's branch is the TU's in accepted
    h.layer.receiveRequest(ackFor(), flow())
    expect(h.tu.onAck).toHaveBeenCalledTimes(2)
    await vi.advanceTimersByTimeAsync(64 * T1 - 10 * T1 - 1)
    expect(phase(tx)).toBe('accepted')
    await vi.advanceTimersByTimeAsync(1)
    expect(tx.state).toBe('terminated')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('a transport error terminates the transaction', async () => {
    const h = harness()
    h.state.fail = true
    h.layer.receiveRequest(invite(), flow())
    const tx = lastTx(h)
    await settle()
    expect(tx.state).toBe('terminated')
    expect(h.layer.size).toBe(0)
  })

  it('an ACK that arrives before any final is dropped', () => {
    const h = harness()
    h.layer.receiveRequest(invite(), flow())
    h.layer.receiveRequest(ackFor(), flow())
    expect(h.tu.onAck).not.toHaveBeenCalled()
    expect(lastTx(h).state).toBe('proceeding')
  })
})

describe('CANCEL matching (RFC 3261 §9.2)', () => {
  it('finds the INVITE transaction by branch and sent-by, and gives CANCEL its own transaction', () => {
    const h = harness()
    h.layer.receiveRequest(invite(), flow())
    const ist = lastTx(h)
    const cancel = request({ method: 'CANCEL', branch: 'z9hG4bK-inv' })
    expect(h.layer.matchInviteForCancel(cancel)).toBe(ist)
    h.layer.receiveRequest(cancel, flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(2)
    const cancelTx = lastTx(h)
    expect(cancelTx).not.toBe(ist)
    expect(cancelTx.request.method).toBe('CANCEL')
    // a retransmitted CANCEL matches the CANCEL transaction, not the INVITE one
    cancelTx.respond(response(cancel, 200, 'OK', { toTag: 'tt' }))
    h.layer.receiveRequest(request({ method: 'CANCEL', branch: 'z9hG4bK-inv' }), flow())
    expect(h.wire()).toEqual([100, 200, 200])
    expect(h.layer.findServerTransaction(cancel)).toBe(cancelTx)
    expect(h.layer.findServerTransaction(invite())).toBe(ist)
  })

  it('finds nothing for another branch, another sent-by, or a NIST', () => {
    const h = harness()
    h.layer.receiveRequest(invite(), flow())
    h.layer.receiveRequest(request({ method: 'OPTIONS', branch: 'z9hG4bK-opt' }), flow())
    expect(h.layer.matchInviteForCancel(request({ method: 'CANCEL', branch: 'z9hG4bK-other' }))).toBeUndefined()
    expect(h.layer.matchInviteForCancel(request({ method: 'CANCEL', branch: 'z9hG4bK-inv', viaHost: '127.0.0.2' }))).toBeUndefined()
    expect(h.layer.matchInviteForCancel(request({ method: 'CANCEL', branch: 'z9hG4bK-opt' }))).toBeUndefined()
  })
})

describe('RFC 2543 matching (no magic cookie, §17.2.3)', () => {
  const old = (o: Parameters<typeof request>[0] = {}): SipRequest => {
    const req = request({ method: 'INVITE', callId: 'old-1', ...o })
    delete req.vias[0]?.params.branch
    return req
  }

  it('matches retransmissions on Request-URI, From tag, Call-ID, CSeq and top Via', () => {
    const h = harness()
    h.layer.receiveRequest(old(), flow())
    h.layer.receiveRequest(old(), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(1)
    expect(h.wire()).toEqual([100, 100])
    h.layer.receiveRequest(old({ seq: 2 }), flow())
    h.layer.receiveRequest(old({ fromTag: 'other' }), flow())
    h.layer.receiveRequest(old({ ruri: 'sip:carol@example.test' }), flow())
    h.layer.receiveRequest(old({ viaPort: 5099 }), flow())
    h.layer.receiveRequest(old({ callId: 'old-2' }), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(6)
  })

  it('absorbs an ACK carrying the To tag of the final, and hands others to the TU', () => {
    const h = harness()
    h.layer.receiveRequest(old(), flow())
    const tx = lastTx(h)
    tx.respond(response(tx.request, 486, 'Busy Here', { toTag: 'tt' }))
    h.layer.receiveRequest(old({ method: 'ACK', toTag: 'zz' }), flow())
    expect(h.tu.onAck).toHaveBeenCalledTimes(1)
    expect(tx.state).toBe('completed')
    const ack = old({ method: 'ACK', toTag: 'tt' })
    ack.cseq = { seq: 1, method: 'ACK' }
    h.layer.receiveRequest(ack, flow())
    expect(tx.state).toBe('confirmed')
    expect(h.tu.onAck).toHaveBeenCalledTimes(1)
  })

  it('matches a CANCEL to its INVITE', () => {
    const h = harness()
    h.layer.receiveRequest(old(), flow())
    const tx = lastTx(h)
    expect(h.layer.matchInviteForCancel(old({ method: 'CANCEL' }))).toBe(tx)
    expect(h.layer.matchInviteForCancel(old({ method: 'CANCEL', toTag: 'x' }))).toBeUndefined()
    expect(h.layer.matchInviteForCancel(old({ method: 'CANCEL', seq: 9 }))).toBeUndefined()
  })

  it('treats a branch without the cookie the RFC 2543 way', () => {
    const h = harness()
    h.layer.receiveRequest(request({ method: 'INVITE', branch: '1234' }), flow())
    h.layer.receiveRequest(request({ method: 'INVITE', branch: '1234', seq: 2 }), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(2)
  })
})
