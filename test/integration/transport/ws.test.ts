import { WebSocket } from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { WsTransport, type WsTransportInit } from '../../../src/sip/transport/ws.js'
import { TransportError } from '../../../src/sip/transport/errors.js'
import { Inbox, sipRequest, until } from './helpers.js'

describe('WsTransport', { timeout: 5000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  async function start (init: WsTransportInit = {}): Promise<{ ws: WsTransport, inbox: Inbox, closed: string[] }> {
    const inbox = new Inbox()
    const closed: string[] = []
    const ws = new WsTransport({ onMessage: inbox.handler, onFlowClosed: (id) => { closed.push(id) } }, { host: '127.0.0.1', port: 0, ...init })
    await ws.start()
    cleanup.push(() => ws.stop())
    return { ws, inbox, closed }
  }

  async function client (port: number, protocols: string[] = ['sip'], path = '/'): Promise<{ sock: WebSocket, received: Array<{ data: string, binary: boolean }> }> {
    const sock = new WebSocket(`ws://127.0.0.1:${port}${path}`, protocols)
    const received: Array<{ data: string, binary: boolean }> = []
    sock.on('message', (d, binary) => { received.push({ data: d.toString(), binary }) })
    cleanup.push(() => { sock.terminate() })
    await new Promise<void>((resolve, reject) => { sock.once('open', resolve); sock.once('error', reject) })
    return { sock, received }
  }

  it('negotiates the sip subprotocol and carries one SIP message per WebSocket message', async () => {
    const { ws, inbox } = await start()
    expect(ws.name).toBe('WS')
    expect(ws.reliable).toBe(true)
    const c = await client(ws.address().port)
    expect(c.sock.protocol).toBe('sip')
    c.sock.send(sipRequest('text frame'))
    c.sock.send(Buffer.from(sipRequest('binary frame')), { binary: true })
    await inbox.waitFor(2)
    expect(inbox.items.map(i => i.data)).toEqual([sipRequest('text frame'), sipRequest('binary frame')])
    const flow = inbox.items[0]!.flow
    expect(flow.transport).toBe('WS')
    expect(flow.id).toMatch(/^ws:\d+$/)
    expect(flow.remoteAddress).toBe('127.0.0.1')
    expect(inbox.items[1]!.flow.id).toBe(flow.id)

    const reply = 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'
    expect(await ws.send({ transport: 'WS', address: 'x', port: 0, flowId: flow.id }, Buffer.from(reply))).toBe(flow)
    // and by remote address/port when the flow id is unknown
    await ws.send({ transport: 'WS', address: flow.remoteAddress, port: flow.remotePort }, Buffer.from(reply))
    await until(() => c.received.length === 2)
    expect(c.received).toEqual([{ data: reply, binary: false }, { data: reply, binary: false }])
    await ws.send({ transport: 'WS', address: 'x', port: 0, flowId: flow.id }, Buffer.from([0xff, 0xfe]))
    await until(() => c.received.length === 3)
    expect(c.received[2]!.binary).toBe(true)
  })

  it('refuses a handshake without the sip subprotocol', async () => {
    const { ws } = await start()
    for (const protocols of [[], ['chat']]) {
      const sock = new WebSocket(`ws://127.0.0.1:${ws.address().port}/`, protocols)
      cleanup.push(() => { sock.terminate() })
      const status = await new Promise<number>((resolve) => {
        sock.once('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0) })
        sock.once('open', () => { resolve(101) })
        sock.once('error', () => { resolve(-1) })
      })
      expect(status).toBe(400)
    }
    expect(ws.connectionCount).toBe(0)
  })

  it('honours a configured path', async () => {
    const { ws } = await start({ path: '/sip' })
    const ok = await client(ws.address().port, ['sip'], '/sip')
    expect(ok.sock.protocol).toBe('sip')
    await expect(client(ws.address().port, ['sip'], '/other')).rejects.toThrow(/404/)
  })

  it('answers CRLFCRLF keep-alives with CRLF and does not deliver them', async () => {
    const { ws, inbox } = await start()
    const c = await client(ws.address().port)
    c.sock.send('\r\n\r\n')
    await until(() => c.received.length === 1)
    expect(c.received[0]!.data).toBe('\r\n')
    expect(inbox.items).toEqual([])
  })

  it('refuses sends without a live flow', async () => {
    const { ws, inbox, closed } = await start()
    await expect(ws.send({ transport: 'WS', address: '127.0.0.1', port: 5060 }, Buffer.from('x'))).rejects.toThrow(TransportError)
    const c = await client(ws.address().port)
    c.sock.send(sipRequest())
    await inbox.waitFor(1)
    const id = inbox.items[0]!.flow.id
    c.sock.close()
    await until(() => closed.includes(id))
    await expect(ws.send({ transport: 'WS', address: '127.0.0.1', port: 1, flowId: id }, Buffer.from('x'))).rejects.toThrow(TransportError)
  })

  it('closes connections that stop answering pings', async () => {
    const { ws, closed } = await start({ pingIntervalMs: 50 })
    // autoPong off: this client never answers pings
    const sock = new WebSocket(`ws://127.0.0.1:${ws.address().port}/`, ['sip'], { autoPong: false })
    cleanup.push(() => { sock.terminate() })
    await new Promise<void>((resolve, reject) => { sock.once('open', resolve); sock.once('error', reject) })
    const healthy = await client(ws.address().port)
    await until(() => closed.length === 1, 2000)
    await new Promise(resolve => setTimeout(resolve, 150))
    expect(closed).toHaveLength(1)
    expect(healthy.sock.readyState).toBe(WebSocket.OPEN)
  })

  it('answers plain HTTP with 426', async () => {
    const { ws } = await start()
    const res = await fetch(`http://127.0.0.1:${ws.address().port}/`)
    expect(res.status).toBe(426)
  })
})
