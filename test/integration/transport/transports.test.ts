import { createSocket } from 'node:dgram'
import { connect } from 'node:net'
import { WebSocket } from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { PromMetrics } from '../../../src/core/metrics.js'
import { EgressDeniedError, TransportError, Transports, type Flow, type TransportsInit } from '../../../src/sip/transport/index.js'
import { Inbox, sipRequest, until } from './helpers.js'

const LOCAL = { host: '127.0.0.1', port: 0 }

describe('Transports', { timeout: 5000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  async function start (init: TransportsInit): Promise<{ t: Transports, inbox: Inbox, metrics: PromMetrics, closed: string[] }> {
    const inbox = new Inbox()
    const metrics = new PromMetrics()
    const closed: string[] = []
    const t = new Transports({ onMessage: inbox.handler, metrics, onFlowClosed: (id) => { closed.push(id) } }, init)
    await t.start()
    cleanup.push(() => t.stop())
    return { t, inbox, metrics, closed }
  }

  it('starts every listener on real ports and stops them', async () => {
    const { t } = await start({ udp: LOCAL, tcp: LOCAL, ws: LOCAL })
    const addrs = t.addresses()
    expect(addrs.map(a => a.transport)).toEqual(['UDP', 'TCP', 'WS'])
    for (const a of addrs) {
      expect(a.address).toBe('127.0.0.1')
      expect(a.port).toBeGreaterThan(0)
    }
    expect(t.isReliable('UDP')).toBe(false)
    expect(t.isReliable('TCP')).toBe(true)
    expect(t.isReliable('WS')).toBe(true)
    await t.stop()
    expect(t.addresses()).toEqual([])
    const tcpPort = addrs[1]!.port
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: tcpPort })
      s.once('connect', () => { s.destroy(); resolve(false) })
      s.once('error', () => { resolve(true) })
    })
    expect(refused).toBe(true)
  })

  it('routes sends by transport and counts messages', async () => {
    const { t, inbox, metrics } = await start({ udp: LOCAL, tcp: false })
    const peer = createSocket('udp4')
    const got: string[] = []
    peer.on('message', (m) => { got.push(m.toString()) })
    await new Promise<void>(resolve => { peer.bind(0, '127.0.0.1', resolve) })
    cleanup.push(() => new Promise<void>(resolve => { peer.close(() => { resolve() }) }))

    peer.send(sipRequest(), t.addresses()[0]!.port, '127.0.0.1')
    await inbox.waitFor(1)
    const flow = await t.send({ transport: 'UDP', address: '127.0.0.1', port: peer.address().port }, Buffer.from('SIP/2.0 200 OK\r\n\r\n'))
    expect(flow.id).toBe(inbox.items[0]!.flow.id)
    await until(() => got.length === 1)
    await expect(t.send({ transport: 'TCP', address: '127.0.0.1', port: 5060 }, Buffer.from('x'))).rejects.toThrow(TransportError)
    await expect(t.send({ transport: 'UDP', address: 'registrar.test', port: 5060 }, Buffer.from('x'))).rejects.toThrow(TransportError)
    const text = await metrics.render()
    expect(text).toMatch(/m1node_sip_transport_messages_total\{transport="UDP",direction="in"\} 1/)
    expect(text).toMatch(/m1node_sip_transport_messages_total\{transport="UDP",direction="out"\} 1/)
  })

  it('refuses destinations outside the egress allow list without sending', async () => {
    const { t, metrics } = await start({ udp: LOCAL, tcp: LOCAL, egressAllow: ['10.0.0.0/8'] })
    const peer = createSocket('udp4')
    const got: string[] = []
    peer.on('message', (m) => { got.push(m.toString()) })
    await new Promise<void>(resolve => { peer.bind(0, '127.0.0.1', resolve) })
    cleanup.push(() => new Promise<void>(resolve => { peer.close(() => { resolve() }) }))

    const target = { transport: 'UDP' as const, address: '127.0.0.1', port: peer.address().port }
    await expect(t.send(target, Buffer.from('x'))).rejects.toThrow(EgressDeniedError)
    await expect(t.send({ ...target, address: '::ffff:127.0.0.1' }, Buffer.from('x'))).rejects.toThrow(EgressDeniedError)
    await expect(t.send({ ...target, transport: 'TCP' }, Buffer.from('x'))).rejects.toBeInstanceOf(EgressDeniedError)
    expect(t.allows('127.0.0.1')).toBe(false)
    expect(t.allows('10.1.2.3')).toBe(true)
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(got).toEqual([])
    expect(await metrics.render()).toMatch(/m1node_sip_transport_egress_denied_total\{transport="UDP"\} 2/)
  })

  it('forwards flow closure as a callback and a flow:closed event and tracks the connection gauge', async () => {
    const { t, inbox, metrics, closed } = await start({ udp: false, tcp: LOCAL, ws: LOCAL })
    const events: Flow[] = []
    t.addEventListener('flow:closed', (e) => { events.push(e.detail) })
    const [tcpAddr, wsAddr] = t.addresses()
    const sock = connect({ host: '127.0.0.1', port: tcpAddr!.port })
    sock.on('error', () => {})
    cleanup.push(() => { sock.destroy() })
    sock.write(sipRequest())
    const ws = new WebSocket(`ws://127.0.0.1:${wsAddr!.port}/`, ['sip'])
    cleanup.push(() => { ws.terminate() })
    await new Promise<void>((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject) })
    ws.send(sipRequest())
    await inbox.waitFor(2)
    let text = await metrics.render()
    expect(text).toMatch(/m1node_sip_transport_connections\{transport="TCP"\} 1/)
    expect(text).toMatch(/m1node_sip_transport_connections\{transport="WS"\} 1/)

    // a reply to the WS flow goes out through the manager
    const wsFlow = inbox.items.find(i => i.flow.transport === 'WS')!.flow
    const replies: string[] = []
    ws.on('message', (d) => { replies.push(d.toString()) })
    await t.send({ transport: 'WS', address: wsFlow.remoteAddress, port: wsFlow.remotePort, flowId: wsFlow.id }, Buffer.from('SIP/2.0 200 OK\r\n\r\n'))
    await until(() => replies.length === 1)

    sock.destroy()
    ws.close()
    await until(() => events.length === 2)
    expect(new Set(events.map(f => f.id))).toEqual(new Set(inbox.items.map(i => i.flow.id)))
    expect(new Set(closed)).toEqual(new Set(events.map(f => f.id)))
    text = await metrics.render()
    expect(text).toMatch(/m1node_sip_transport_connections\{transport="TCP"\} 0/)
    expect(text).toMatch(/m1node_sip_transport_connections\{transport="WS"\} 0/)
  })

  it('stops what it started when a listener cannot start', async () => {
    const first = await start({ udp: LOCAL, tcp: false })
    const port = first.t.addresses()[0]!.port
    const t = new Transports({ onMessage: () => {} }, { tcp: LOCAL, udp: { host: '127.0.0.1', port } })
    await expect(t.start()).rejects.toThrow(TransportError)
    expect(t.addresses()).toEqual([])
  })

  it('rejects a bad egress allow list at construction', () => {
    expect(() => new Transports({ onMessage: () => {} }, { udp: false, tcp: false, egressAllow: ['10.0.0.0/40'] })).toThrow(/prefix/)
  })
})
