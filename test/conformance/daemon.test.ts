import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSocket, type Socket } from 'node:dgram'
import { screenMessage } from '../../src/sip/message/index.js'
import { startNode, type TestNode } from '../helpers/node.js'
import { haveCorpus, readManifest, readMessage, type ManifestEntry } from './corpus.js'

// Every corpus message as a real UDP datagram to a running node: the node answers with the status its screening
// decides (400/505/416/420/...), stays silent where a message must be dropped, answers nothing anywhere but the
// packet's source (the messages' Via hosts are 192.0.2.x and example.com), and keeps serving afterwards.
function statusOf (b: Buffer): number {
  const m = /^SIP\/2\.0 (\d{3}) /.exec(b.toString('latin1', 0, 16))
  return m != null ? Number(m[1]) : 0
}

describe.skipIf(!haveCorpus)('RFC 4475 / RFC 5118 corpus against a running node', () => {
  let n: TestNode

  // A node per message: several corpus messages share a branch and sent-by, which a node rightly takes for
  // retransmissions of one transaction; the data dir is kept, so the restarts are cheap.
  let dataDir: string
  beforeAll(async () => { dataDir = await mkdtemp(join(tmpdir(), 'm1node-corpus-')) })
  afterAll(async () => { await rm(dataDir, { recursive: true, force: true }) })
  beforeEach(async () => { n = await startNode({ dataDir }) })
  afterEach(async () => { await n.stop() })

  /** Sends from a fresh socket (so retransmitted answers to earlier messages cannot mix in) and collects answers. */
  async function exchange (data: Buffer, waitMs: number, from?: (port: number) => Buffer): Promise<Buffer[]> {
    const inbox: Buffer[] = []
    const sock: Socket = createSocket('udp4')
    sock.on('message', (m) => { inbox.push(m) })
    await new Promise<void>(resolve => sock.bind(0, '127.0.0.1', resolve))
    try {
      sock.send(from?.(sock.address().port) ?? data, n.udp, '127.0.0.1')
      const deadline = Date.now() + waitMs
      while (Date.now() < deadline) {
        if (inbox.some(b => !/^SIP\/2\.0 1\d\d /.test(b.toString('latin1', 0, 12)))) break
        await new Promise(resolve => setTimeout(resolve, 10))
      }
      return inbox
    } finally {
      sock.close()
    }
  }

  const corpora: Array<[string, ManifestEntry[], (e: ManifestEntry) => string]> = haveCorpus
    ? [
        ['rfc4475', readManifest('rfc4475').messages, e => e.file],
        ['rfc5118', readManifest('rfc5118').messages, e => e.wire_file ?? `wire/${e.file}`]
      ]
    : []

  for (const [dir, entries, fileOf] of corpora) {
    for (const entry of entries) {
      it(`${dir} ${entry.name}`, async () => {
        const data = readMessage(dir, fileOf(entry))
        const s = screenMessage(data)
        const expectSilence = s.action === 'drop' || (s.action === 'process' && (s.message.kind === 'response' || (s.message.kind === 'request' && s.message.method === 'ACK')))
        const replies = await exchange(data, expectSilence ? 300 : 2000)
        // the status line only: an answer to a malformed request echoes the malformed headers
        const finals = replies.map(statusOf).filter(st => st >= 200)
        if (expectSilence) {
          expect(finals, 'no answer').toEqual([])
        } else if (s.action === 'reject') {
          expect(finals).toEqual([s.status])
        } else {
          // processed: answered by routing (a registrar's 401, 200 to OPTIONS, 501 for what the node does not do)
          expect(finals).toHaveLength(1)
          expect(finals[0]).not.toBe(400)
          expect(finals[0]).toBeLessThan(600)
        }
      })
    }
  }

  it('is still up and nothing was sent off the machine', async () => {
    const res = await exchange(Buffer.alloc(0), 2000, port => Buffer.from([
      `OPTIONS sip:127.0.0.1:${n.udp} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKalive`,
      'Max-Forwards: 70', 'From: <sip:t@127.0.0.1>;tag=a', 'To: <sip:127.0.0.1>', 'Call-ID: alive', 'CSeq: 1 OPTIONS',
      'Content-Length: 0', '', ''
    ].join('\r\n')))
    expect(res.map(b => b.toString('latin1').split('\r\n')[0])).toContain('SIP/2.0 200 OK')
    const metrics = await (await fetch(`${n.web}/metrics`)).text()
    expect(metrics).not.toMatch(/m1node_sip_transport_egress_denied_total\{[^}]*\} [1-9]/)
  })
})
