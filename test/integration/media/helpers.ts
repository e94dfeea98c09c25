import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'

/** A plain UDP socket on loopback playing one phone; collects what it receives. */
export class Peer {
  readonly received: Array<{ data: Buffer, from: RemoteInfo }> = []
  private waiters: Array<() => void> = []

  private constructor (readonly socket: Socket) {
    socket.on('message', (data, from) => {
      this.received.push({ data, from })
      for (const w of this.waiters.splice(0)) w()
    })
  }

  static async open (address = '127.0.0.1', port = 0): Promise<Peer> {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind(port, address, () => { socket.off('error', reject); resolve() })
    })
    return new Peer(socket)
  }

  get port (): number { return this.socket.address().port }
  get address (): string { return this.socket.address().address }

  send (data: Buffer | string, port: number, address = '127.0.0.1'): void {
    this.socket.send(typeof data === 'string' ? Buffer.from(data) : data, port, address)
  }

  /** Waits until `count` packets have arrived in all; rejects after `timeoutMs`. */
  async waitFor (count: number, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.received.length < count) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${count} packets (got ${this.received.length})`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  /** Resolves after `ms` with the number of packets received in the meantime (to check that nothing arrives). */
  async quiet (ms: number): Promise<number> {
    const before = this.received.length
    await new Promise(resolve => setTimeout(resolve, ms))
    return this.received.length - before
  }

  last (): { data: Buffer, from: RemoteInfo } {
    const item = this.received[this.received.length - 1]
    if (item == null) throw new Error('nothing received')
    return item
  }

  async close (): Promise<void> {
    await new Promise<void>(resolve => { try { this.socket.close(() => { resolve() }) } catch { resolve() } })
  }
}

/** Binds two sockets on consecutive ports (even, odd) in [from, to): a phone's implicit RTP / RTCP pair. */
export async function openPair (from: number, to: number): Promise<[Peer, Peer]> {
  for (let port = from; port + 1 < to; port += 2) {
    let rtp: Peer | undefined
    try {
      rtp = await Peer.open('127.0.0.1', port)
      const rtcp = await Peer.open('127.0.0.1', port + 1)
      return [rtp, rtcp]
    } catch {
      await rtp?.close()
    }
  }
  throw new Error('no free consecutive ports')
}

/** A minimal phone SDP (PCMU/PCMA/telephone-event). */
export function phoneSdp (port: number, options: { address?: string, version?: number, extra?: string[], mline?: string } = {}): string {
  const address = options.address ?? '127.0.0.1'
  return [
    'v=0',
    `o=- 1000 ${options.version ?? 1} IN IP4 ${address}`,
    's=-',
    `c=IN IP4 ${address}`,
    't=0 0',
    options.mline ?? `m=audio ${port} RTP/AVP 0 8 101`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    'a=rtpmap:101 telephone-event/8000',
    ...(options.extra ?? []),
    ''
  ].join('\r\n')
}

/** The RTP ports of each m-line of a (rewritten) SDP. */
export function mPorts (sdp: string): number[] {
  return [...sdp.matchAll(/^m=\S+ (\d+)/gm)].map(m => Number(m[1]))
}

/** A 12-byte RTP header (V=2, PT 0) + payload. */
export function rtp (seq: number, payload = 'x'.repeat(160)): Buffer {
  const b = Buffer.alloc(12 + Buffer.byteLength(payload))
  b[0] = 0x80
  b[1] = 0
  b.writeUInt16BE(seq & 0xffff, 2)
  b.writeUInt32BE(seq * 160, 4)
  b.writeUInt32BE(0x11223344, 8)
  b.write(payload, 12)
  return b
}

/** An RTCP receiver report (PT 201) with no report blocks. */
export function rtcpRr (ssrc = 0x55667788): Buffer {
  const b = Buffer.alloc(8)
  b[0] = 0x80
  b[1] = 201
  b.writeUInt16BE(1, 2)
  b.writeUInt32BE(ssrc, 4)
  return b
}
