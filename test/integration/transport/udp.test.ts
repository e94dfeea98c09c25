import { createSocket, type Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { UdpTransport } from '../../../src/sip/transport/udp.js'
import { TransportError } from '../../../src/sip/transport/errors.js'
import { Inbox, sipRequest } from './helpers.js'

describe('UdpTransport', { timeout: 5000 }, () => {
  const cleanup: Array<() => Promise<void> | void> = []
  afterEach(async () => { for (const c of cleanup.splice(0).reverse()) await c() })

  async function peer (): Promise<{ socket: Socket, port: number, inbox: string[] }> {
    const socket = createSocket('udp4')
    const inbox: string[] = []
    socket.on('message', (m) => { inbox.push(m.toString()) })
    await new Promise<void>(resolve => { socket.bind(0, '127.0.0.1', resolve) })
    cleanup.push(() => new Promise<void>(resolve => { socket.close(() => { resolve() }) }))
    return { socket, port: socket.address().port, inbox }
  }

  it('delivers datagrams with a udp flow and sends back to the peer', async () => {
    const inbox = new Inbox()
    const udp = new UdpTransport({ onMessage: inbox.handler }, { host: '127.0.0.1', port: 0 })
    await udp.start()
    cleanup.push(() => udp.stop())
    expect(udp.reliable).toBe(false)
    const { port } = udp.address()
    expect(port).toBeGreaterThan(0)

    const p = await peer()
    p.socket.send(Buffer.from(sipRequest()), port, '127.0.0.1')
    await inbox.waitFor(1)
    const { data, flow } = inbox.items[0]!
    expect(data).toBe(sipRequest())
    expect(flow).toEqual({ transport: 'UDP', id: `udp:127.0.0.1:${p.port}`, remoteAddress: '127.0.0.1', remotePort: p.port, localAddress: '127.0.0.1', localPort: port })

    const sent = await udp.send({ transport: 'UDP', address: '127.0.0.1', port: p.port }, Buffer.from('SIP/2.0 200 OK\r\n\r\n'))
    expect(sent.id).toBe(flow.id)
    await expect.poll(() => p.inbox).toEqual(['SIP/2.0 200 OK\r\n\r\n'])
  })

  it('ignores CRLF keep-alives and non-SIP datagrams, strips leading CRLFs', async () => {
    const inbox = new Inbox()
    const udp = new UdpTransport({ onMessage: inbox.handler }, { host: '127.0.0.1', port: 0 })
    await udp.start()
    cleanup.push(() => udp.stop())
    const p = await peer()
    const port = udp.address().port
    p.socket.send(Buffer.from('\r\n\r\n'), port, '127.0.0.1')
    p.socket.send(Buffer.from([0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]), port, '127.0.0.1')
    p.socket.send(Buffer.from('\r\n' + sipRequest()), port, '127.0.0.1')
    await inbox.waitFor(1)
    await new Promise(resolve => setTimeout(resolve, 50))
    expect(inbox.items.map(i => i.data)).toEqual([sipRequest()])
  })

  it('survives a throwing handler', async () => {
    let calls = 0
    const udp = new UdpTransport({ onMessage: () => { calls++; throw new Error('boom') } }, { host: '127.0.0.1', port: 0 })
    await udp.start()
    cleanup.push(() => udp.stop())
    const p = await peer()
    p.socket.send(Buffer.from(sipRequest()), udp.address().port, '127.0.0.1')
    p.socket.send(Buffer.from(sipRequest()), udp.address().port, '127.0.0.1')
    await expect.poll(() => calls).toBe(2)
  })

  it('rejects bad targets with TransportError', async () => {
    const udp = new UdpTransport({ onMessage: () => {} }, { host: '127.0.0.1', port: 0 })
    await expect(udp.send({ transport: 'UDP', address: '127.0.0.1', port: 9 }, Buffer.from('x'))).rejects.toThrow(TransportError)
    await udp.start()
    cleanup.push(() => udp.stop())
    await expect(udp.send({ transport: 'UDP', address: 'example.com', port: 5060 }, Buffer.from('x'))).rejects.toThrow(TransportError)
    await expect(udp.send({ transport: 'UDP', address: '::1', port: 5060 }, Buffer.from('x'))).rejects.toThrow(TransportError)
    await expect(udp.send({ transport: 'UDP', address: '127.0.0.1', port: 0 }, Buffer.from('x'))).rejects.toThrow(TransportError)
  })

  it('runs on an IPv6 (udp6) socket and reports IPv4 peers as IPv4', async () => {
    const inbox = new Inbox()
    // an IPv4-mapped bind keeps the udp6 socket on the loopback address
    const udp = new UdpTransport({ onMessage: inbox.handler }, { host: '::ffff:127.0.0.1', port: 0 })
    await udp.start()
    cleanup.push(() => udp.stop())
    expect(udp.address().address).toBe('127.0.0.1')
    const p = await peer()
    p.socket.send(Buffer.from(sipRequest()), udp.address().port, '127.0.0.1')
    await inbox.waitFor(1)
    expect(inbox.items[0]!.flow.remoteAddress).toBe('127.0.0.1')
    expect(inbox.items[0]!.flow.id).toBe(`udp:127.0.0.1:${p.port}`)
    await udp.send({ transport: 'UDP', address: '127.0.0.1', port: p.port }, Buffer.from('pong'))
    await expect.poll(() => p.inbox).toEqual(['pong'])
  })

  it('fails to start on a port in use', async () => {
    const a = new UdpTransport({ onMessage: () => {} }, { host: '127.0.0.1', port: 0 })
    await a.start()
    cleanup.push(() => a.stop())
    const b = new UdpTransport({ onMessage: () => {} }, { host: '127.0.0.1', port: a.address().port })
    await expect(b.start()).rejects.toThrow(TransportError)
  })
})
