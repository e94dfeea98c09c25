import { describe, expect, it } from 'vitest'
import { P2pSipTransport, SIP_PROTOCOL, type SipStream } from '../../../src/routing/index.js'
import type { Flow, TransportHooks } from '../../../src/sip/transport/index.js'

/** An in-memory stream: `push` feeds what the transport reads, `sent` holds what it wrote. */
class FakeStream implements SipStream {
  readonly sent: Uint8Array[] = []
  aborted?: Error
  closed = false
  private readonly queue: Uint8Array[] = []
  private wake?: () => void
  private ended = false

  push (data: Uint8Array): void { this.queue.push(data); this.wake?.() }
  end (): void { this.ended = true; this.wake?.() }
  send (data: Uint8Array): boolean { this.sent.push(data); return true }
  async onDrain (): Promise<void> {}
  async close (): Promise<void> { this.closed = true; this.end() }
  abort (err: Error): void { this.aborted = err; this.end() }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    for (;;) {
      const next = this.queue.shift()
      if (next != null) { yield next; continue }
      if (this.ended) return
      await new Promise<void>(resolve => { this.wake = resolve })
      this.wake = undefined
    }
  }
}

function frame (text: string, length = Buffer.byteLength(text)): Buffer {
  const out = Buffer.alloc(4 + Buffer.byteLength(text))
  out.writeUInt32BE(length, 0)
  out.write(text, 4)
  return out
}

async function setup (dial?: (peer: string) => Promise<SipStream>): Promise<{ transport: P2pSipTransport, accept: (s: SipStream, peer: string) => void, got: Array<{ text: string, flow: Flow }>, closed: string[] }> {
  let accept: ((s: SipStream, peer: string) => void) | undefined
  const got: Array<{ text: string, flow: Flow }> = []
  const closed: string[] = []
  const hooks: TransportHooks = {
    onMessage: (data, flow) => { got.push({ text: data.toString(), flow }) },
    onFlowOpened: () => {},
    onFlowClosed: (id) => { closed.push(id) }
  }
  const transport = new P2pSipTransport({
    p2p: {
      peerId: 'self',
      handleStreams: async (protocol, handler) => { expect(protocol).toBe(SIP_PROTOCOL); accept = handler },
      dialStream: dial ?? (async () => { throw new Error('unreachable') }),
      unhandle: async () => {}
    },
    hooks
  }, { dialTimeoutMs: 200 })
  await transport.start()
  return { transport, accept: accept!, got, closed }
}

const tick = async (): Promise<void> => await new Promise(resolve => setTimeout(resolve, 10))

describe('P2pSipTransport', () => {
  it('reassembles frames split across chunks and names the peer in the flow', async () => {
    const { accept, got } = await setup()
    const s = new FakeStream()
    accept(s, 'peer-1')
    const bytes = Buffer.concat([frame('OPTIONS one'), frame(''), frame('OPTIONS two')])
    s.push(bytes.subarray(0, 3))
    s.push(bytes.subarray(3, 17))
    s.push(bytes.subarray(17))
    await tick()
    expect(got.map(g => g.text)).toEqual(['OPTIONS one', 'OPTIONS two'])
    expect(got[0]!.flow).toMatchObject({ transport: 'P2P', id: 'p2p:peer-1', remoteAddress: 'peer-1' })
  })

  it('aborts a stream announcing a frame over 64 KiB, or ending inside a frame', async () => {
    const { accept, got, closed } = await setup()
    const big = new FakeStream()
    accept(big, 'peer-1')
    big.push(frame('x', 65537))
    await tick()
    expect(big.aborted).toBeDefined()
    const cut = new FakeStream()
    accept(cut, 'peer-2')
    cut.push(frame('INVITE', 100))
    cut.end()
    await tick()
    expect(cut.aborted).toBeDefined()
    expect(got).toEqual([])
    expect(closed).toEqual(['p2p:peer-1', 'p2p:peer-2'])
  })

  it('sends on the stream the peer opened, and dials when there is none', async () => {
    const dialled = new FakeStream()
    const dials: string[] = []
    const { transport, accept } = await setup(async (peer) => { dials.push(peer); return dialled })
    const inbound = new FakeStream()
    accept(inbound, 'peer-1')
    await transport.send({ transport: 'P2P', address: 'peer-1', port: 0 }, Buffer.from('SIP/2.0 200 OK'))
    expect(Buffer.from(inbound.sent[0]!).subarray(4).toString()).toBe('SIP/2.0 200 OK')
    expect(Buffer.from(inbound.sent[0]!).readUInt32BE(0)).toBe(14)
    const [a, b] = await Promise.all([
      transport.send({ transport: 'P2P', address: 'peer-2', port: 0 }, Buffer.from('BYE a')),
      transport.send({ transport: 'P2P', address: 'peer-2', port: 0 }, Buffer.from('BYE b'))
    ])
    expect(dials).toEqual(['peer-2'])
    expect(a.id).toBe('p2p:peer-2')
    expect(b.id).toBe('p2p:peer-2')
    expect(dialled.sent).toHaveLength(2)
  })

  it('fails a send to an unreachable peer with a TransportError', async () => {
    const { transport } = await setup()
    await expect(transport.send({ transport: 'P2P', address: 'peer-9', port: 0 }, Buffer.from('INVITE'))).rejects.toThrow(/unreachable/)
    await transport.stop()
    await expect(transport.send({ transport: 'P2P', address: 'peer-9', port: 0 }, Buffer.from('INVITE'))).rejects.toThrow(/not running/)
  })
})
