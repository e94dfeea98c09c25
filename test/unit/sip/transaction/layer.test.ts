import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Metrics } from '../../../../src/core/metrics.js'
import type { SipMessage } from '../../../../src/sip/message/types.js'
import type { SendTarget } from '../../../../src/sip/transport/types.js'
import {
  DuplicateTransactionError, InvalidTransactionRequestError, TransactionLayer, TransactionLayerStoppedError
} from '../../../../src/sip/transaction/index.js'
import { clientUser, flow, harness, request, response, target, T1 } from './fixtures.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

function fakeMetrics () {
  const counts = new Map<string, number>()
  const gauges = new Map<string, () => number>()
  const metrics: Metrics = {
    counter: (name) => ({
      inc: (labels, value = 1) => {
        const key = `${name}${JSON.stringify(labels ?? {})}`
        counts.set(key, (counts.get(key) ?? 0) + value)
      }
    }),
    gauge: (name, _help, _labels, collect) => {
      if (collect !== undefined) gauges.set(name, collect)
      return { set () {}, inc () {}, dec () {} }
    },
    render: async () => '',
    contentType: 'text/plain'
  }
  return { metrics, counts, gauges }
}

describe('TransactionLayer', () => {
  it('hands unmatched responses to the TU as stray, and drops out-of-range statuses', () => {
    const h = harness()
    const res = response(request({ method: 'INVITE' }), 200, 'OK', { toTag: 'a' })
    h.layer.receiveResponse(res, flow())
    expect(h.tu.onStrayResponse).toHaveBeenCalledWith(res, flow())
    h.layer.receiveResponse({ ...res, status: 99 }, flow())
    h.layer.receiveResponse({ ...res, vias: [] }, flow())
    expect(h.tu.onStrayResponse).toHaveBeenCalledTimes(2)
  })

  it('ignores a request without Via', () => {
    const h = harness()
    h.layer.receiveRequest({ ...request(), vias: [] }, flow())
    expect(h.tu.onRequest).not.toHaveBeenCalled()
    expect(h.layer.size).toBe(0)
  })

  it('refuses ACK, a request without branch, and a live duplicate', () => {
    const h = harness()
    expect(() => h.layer.request(request({ method: 'ACK' }), target(), clientUser())).toThrow(InvalidTransactionRequestError)
    const noBranch = request({ method: 'OPTIONS' })
    delete noBranch.vias[0]?.params.branch
    expect(() => h.layer.request(noBranch, target(), clientUser())).toThrow(InvalidTransactionRequestError)
    h.layer.request(request({ method: 'OPTIONS' }), target(), clientUser())
    expect(() => h.layer.request(request({ method: 'OPTIONS' }), target(), clientUser())).toThrow(DuplicateTransactionError)
  })

  it('answers 500 (with a To tag) when the TU throws on a new request', () => {
    const h = harness()
    h.tu.onRequest.mockImplementation(() => { throw new Error('bug') })
    h.layer.receiveRequest(request(), flow())
    expect(h.wire()).toEqual([500])
    const res = h.sent[0]?.msg
    const tag = res?.to.params.tag
    expect(tag).toMatch(/^[\w-]{8,}$/)
    expect(res?.headers.find((x) => x.name === 'To')?.value).toBe(`<sip:bob@example.test>;tag=${String(tag)}`)
  })

  it('survives a TU that throws on responses, ACKs and stray responses', () => {
    const h = harness()
    h.tu.onAck.mockImplementation(() => { throw new Error('bug') })
    h.tu.onStrayResponse.mockImplementation(() => { throw new Error('bug') })
    const user = clientUser()
    user.onResponse.mockImplementation(() => { throw new Error('bug') })
    const req = request({ method: 'OPTIONS' })
    const tx = h.layer.request(req, target(), user)
    expect(() => { h.layer.receiveResponse(response(req, 200, 'OK', { toTag: 'a' }), flow()) }).not.toThrow()
    expect(tx.state).toBe('completed')
    expect(() => { h.layer.receiveRequest(request({ method: 'ACK' }), flow()) }).not.toThrow()
    expect(() => { h.layer.receiveResponse(response(request({ branch: 'z9hG4bK-x' }), 200), flow()) }).not.toThrow()
  })

  it('survives a send() that throws instead of rejecting', async () => {
    const tu = { onRequest: vi.fn(), onAck: vi.fn(), onStrayResponse: vi.fn() }
    const layer = new TransactionLayer({
      send: (_t: SendTarget, _m: SipMessage) => { throw new Error('sync') },
      isReliable: () => false,
      tu
    })
    const user = clientUser()
    expect(() => layer.request(request({ method: 'OPTIONS' }), target(), user)).not.toThrow()
    await vi.advanceTimersByTimeAsync(0)
    expect(user.onTransportError).toHaveBeenCalledTimes(1)
    expect(layer.size).toBe(0)
  })

  it('stop() terminates everything, clears every timer and drops what comes after', async () => {
    const h = harness()
    const user = clientUser()
    h.layer.request(request({ method: 'INVITE', branch: 'z9hG4bK-c1' }), target(), user)
    h.layer.request(request({ method: 'OPTIONS', branch: 'z9hG4bK-c2' }), target(), user)
    h.layer.receiveRequest(request({ method: 'INVITE', branch: 'z9hG4bK-s1' }), flow())
    h.layer.receiveRequest(request({ method: 'MESSAGE', branch: 'z9hG4bK-s2' }), flow())
    h.tu.onRequest.mock.calls[1]?.[1].respond(response(request({ method: 'MESSAGE', branch: 'z9hG4bK-s2' }), 202, 'Accepted', { toTag: 'a' }))
    expect(h.layer.size).toBe(4)
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    h.layer.stop()
    expect(h.layer.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(100 * T1)
    expect(user.onTimeout).not.toHaveBeenCalled()
    h.layer.receiveRequest(request({ branch: 'z9hG4bK-late' }), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(2)
    expect(() => h.layer.request(request({ method: 'OPTIONS', branch: 'z9hG4bK-c3' }), target(), user)).toThrow(TransactionLayerStoppedError)
    h.layer.start()
    h.layer.receiveRequest(request({ branch: 'z9hG4bK-late' }), flow())
    expect(h.tu.onRequest).toHaveBeenCalledTimes(3)
    h.layer.stop()
  })

  it('counts ended transactions by kind and result, and reports how many are in flight', async () => {
    const { metrics, counts, gauges } = fakeMetrics()
    const send = vi.fn(async () => {})
    const tu = { onRequest: vi.fn(), onAck: vi.fn(), onStrayResponse: vi.fn() }
    const layer = new TransactionLayer({ send, isReliable: (t) => t !== 'UDP', tu, metrics }, { t1: 100 })
    const inFlight = gauges.get('m1node_sip_transactions_in_flight')
    expect(inFlight?.()).toBe(0)
    const req = request({ method: 'OPTIONS' })
    layer.request(req, target(), clientUser())
    layer.request(request({ method: 'INVITE', branch: 'z9hG4bK-i' }), target(), clientUser())
    layer.receiveRequest(request({ method: 'REGISTER', transport: 'TCP' }), flow('TCP'))
    expect(inFlight?.()).toBe(3)
    tu.onRequest.mock.calls[0]?.[1].respond(response(request({ transport: 'TCP' }), 200, 'OK', { toTag: 'a' }))
    layer.receiveResponse(response(req, 404, 'Not Found', { toTag: 'a' }), flow())
    await vi.advanceTimersByTimeAsync(64 * 100) // Timer B for the INVITE (T1 = 100)
    await vi.advanceTimersByTimeAsync(5000) // Timer K for the OPTIONS
    expect(inFlight?.()).toBe(0)
    expect(Object.fromEntries(counts)).toEqual({
      'm1node_sip_transactions_total{"kind":"nist","result":"2xx"}': 1,
      'm1node_sip_transactions_total{"kind":"ict","result":"timeout"}': 1,
      'm1node_sip_transactions_total{"kind":"nict","result":"4xx"}': 1
    })
  })

  it('uses the configured timer values', async () => {
    const h = harness({ t1: 100, t2: 400, t4: 1000 })
    const user = clientUser()
    h.layer.request(request({ method: 'OPTIONS' }), target(), user)
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 400)
    expect(h.sent).toHaveLength(5)
    await vi.advanceTimersByTimeAsync(64 * 100 - 1100)
    expect(user.onTimeout).toHaveBeenCalledTimes(1)
  })
})
