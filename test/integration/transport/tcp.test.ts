import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { TcpTransport } from '../../../src/sip/transport/tcp.js'
import { StreamFramer } from '../../../src/sip/transport/framer.js'
import { TransportError } from '../../../src/sip/transport/errors.js'
import type { Flow } from '../../../src/sip/transport/types.js'
import { Inbox, sipRequest, until } from './helpers.js'

describe('TcpTransport', { timeout: 5000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  async function start (init: ConstructorParameters<typeof TcpTransport>[1] = {}): Promise<{ tcp: TcpTransport, inbox: Inbox, closed: string[] }> {
    const inbox = new Inbox()
    const closed: string[] = []
    const tcp = new TcpTransport({ onMessage: inbox.handler, onFlowClosed: (id) => { closed.push(id) } }, { host: '127.0.0.1', port: 0, ...init })
    await tcp.start()
    cleanup.push(() => tcp.stop())
    return { tcp, inbox, closed }
  }

  async function client (port: number): Promise<{ socket: Socket, received: () => string }> {
    const socket = connect({ host: '127.0.0.1', port })
    let received = ''
    socket.on('data', (d) => { received += d.toString() })
    socket.on('error', () => {})
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    cleanup.push(() => { socket.destroy() })
    return { socket, received: () => received }
  }

  it('frames messages split across writes and answers pings', async () => {
    const { tcp, inbox } = await start()
    const c = await client(tcp.address().port)
    const stream = sipRequest('hello') + '\r\n\r\n' + sipRequest() + sipRequest('world!')
    for (let i = 0; i < stream.length; i += 37) {
      c.socket.write(stream.slice(i, i + 37))
      await new Promise(resolve => setImmediate(resolve))
    }
    await inbox.waitFor(3)
    expect(inbox.items.map(i => i.data)).toEqual([sipRequest('hello'), sipRequest(), sipRequest('world!')])
    const flow = inbox.items[0]!.flow
    expect(flow.transport).toBe('TCP')
    expect(flow.id).toMatch(/^tcp:\d+$/)
    expect(flow.remoteAddress).toBe('127.0.0.1')
    expect(flow.remotePort).toBe(c.socket.localPort)
    expect(flow.localPort).toBe(tcp.address().port)
    expect(new Set(inbox.items.map(i => i.flow.id)).size).toBe(1)
    await until(() => c.received() === '\r\n')
  })

  it('answers over the same connection by flow id', async () => {
    const { tcp, inbox } = await start()
    const c = await client(tcp.address().port)
    c.socket.write(sipRequest())
    await inbox.waitFor(1)
    const flow = inbox.items[0]!.flow
    // address and port do not matter when the flow is still open
    const sent = await tcp.send({ transport: 'TCP', address: '127.0.0.1', port: 1, flowId: flow.id }, Buffer.from('SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'))
    expect(sent).toBe(flow)
    await until(() => c.received() === 'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n')
  })

  it('opens one connection and reuses it for later sends', async () => {
    const received: string[] = []
    const accepted: Socket[] = []
    const server: Server = createServer((s) => {
      accepted.push(s)
      const framer = new StreamFramer({ onMessage: (m) => { received.push(m.toString()) }, onPing: () => {}, onError: () => {} })
      s.on('data', (d) => { framer.push(d) })
      s.on('error', () => {})
    })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    cleanup.push(() => new Promise<void>(resolve => { for (const s of accepted) s.destroy(); server.close(() => { resolve() }) }))
    const port = (server.address() as { port: number }).port

    const { tcp, inbox } = await start()
    const target = { transport: 'TCP' as const, address: '127.0.0.1', port }
    const flows = await Promise.all([1, 2, 3].map(async n => await tcp.send(target, Buffer.from(sipRequest(`#${n}`)))))
    const more = await tcp.send(target, Buffer.from(sipRequest('#4')))
    expect(new Set([...flows, more].map(f => f.id)).size).toBe(1)
    expect(tcp.connectionCount).toBe(1)
    await until(() => received.length === 4)
    expect(accepted).toHaveLength(1)
    expect(received.sort()).toEqual([1, 2, 3, 4].map(n => sipRequest(`#${n}`)).sort())

    // the reply comes back over the connection we opened, with the same flow
    accepted[0]!.write(sipRequest('reply'))
    await inbox.waitFor(1)
    expect(inbox.items[0]!.flow.id).toBe(more.id)
  })

  it('closes idle connections and reports the closed flow', async () => {
    const { tcp, inbox, closed } = await start({ idleTimeoutMs: 150 })
    const c = await client(tcp.address().port)
    c.socket.write(sipRequest())
    await inbox.waitFor(1)
    const id = inbox.items[0]!.flow.id
    const ended = new Promise<void>(resolve => { c.socket.once('close', () => { resolve() }) })
    await ended
    await until(() => closed.length === 1)
    expect(closed).toEqual([id])
    expect(tcp.connectionCount).toBe(0)
    await expect(tcp.send({ transport: 'TCP', address: '127.0.0.1', port: 1, flowId: id }, Buffer.from('x')))
      .rejects.toThrow(TransportError)
  })

  it('closes a connection whose message has no Content-Length', async () => {
    const { tcp, inbox, closed } = await start()
    const c = await client(tcp.address().port)
    c.socket.write('OPTIONS sip:a SIP/2.0\r\nCall-ID: x\r\n\r\n')
    await new Promise<void>(resolve => { c.socket.once('close', () => { resolve() }) })
    expect(inbox.items).toEqual([])
    expect(closed).toHaveLength(1)
  })

  it('closes a connection announcing an oversized body', async () => {
    const { tcp } = await start({ maxBodyBytes: 1000 })
    const c = await client(tcp.address().port)
    c.socket.write('MESSAGE sip:a SIP/2.0\r\nContent-Length: 1001\r\n\r\n')
    await new Promise<void>(resolve => { c.socket.once('close', () => { resolve() }) })
  })

  it('refuses connections beyond maxConnections', async () => {
    const { tcp } = await start({ maxConnections: 1 })
    await client(tcp.address().port)
    await until(() => tcp.connectionCount === 1)
    const second = await client(tcp.address().port)
    await new Promise<void>(resolve => { second.socket.once('close', () => { resolve() }) })
    expect(tcp.connectionCount).toBe(1)
  })

  it('rejects with TransportError when the peer refuses, the target is a name or the send is aborted', async () => {
    const { tcp } = await start({ connectTimeoutMs: 200 })
    // a port that was just free: nothing listens there
    const probe = createServer()
    await new Promise<void>(resolve => { probe.listen(0, '127.0.0.1', resolve) })
    const freePort = (probe.address() as { port: number }).port
    await new Promise<void>(resolve => { probe.close(() => { resolve() }) })
    await expect(tcp.send({ transport: 'TCP', address: '127.0.0.1', port: freePort }, Buffer.from('x'))).rejects.toThrow(TransportError)
    await expect(tcp.send({ transport: 'TCP', address: 'localhost', port: freePort }, Buffer.from('x'))).rejects.toThrow(TransportError)
    const aborted = new AbortController()
    aborted.abort()
    await expect(tcp.send({ transport: 'TCP', address: '127.0.0.1', port: freePort }, Buffer.from('x'), { signal: aborted.signal })).rejects.toThrow()
  })

  it('stops cleanly with open connections and reports them closed', async () => {
    const { tcp, inbox, closed } = await start()
    const c = await client(tcp.address().port)
    c.socket.write(sipRequest())
    await inbox.waitFor(1)
    const flow: Flow = inbox.items[0]!.flow
    await tcp.stop()
    await until(() => closed.includes(flow.id))
    await expect(tcp.send({ transport: 'TCP', address: '127.0.0.1', port: 1, flowId: flow.id }, Buffer.from('x'))).rejects.toThrow(TransportError)
  })
})
