// The relay side of bench/media.mjs: a process that runs one MediaRelay and does offers/answers on request over
// IPC, so that the relay's event loop is measured alone. Not meant to be run by hand.
import { MediaRelay } from '../dist/media/index.js'

let relay

const sdp = (port) => [
  'v=0', `o=- ${port} 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0',
  `m=audio ${port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-16', 'a=ptime:20', 'a=sendrecv', ''
].join('\r\n')
const mPort = (text) => Number(/^m=audio (\d+)/m.exec(text)[1])

const ops = {
  async start ({ init }) {
    relay = new MediaRelay({ allows: (a) => a.startsWith('127.') }, init)
    await relay.start()
    return { pid: process.pid }
  },
  /** calls: [{ id, a, b }] (the generator's ports) -> [{ pa, pb }]: where A and B send to */
  async setup ({ calls }) {
    const out = []
    for (const c of calls) {
      const toB = await relay.offer(c.id, 'a', sdp(c.a))
      const toA = await relay.answer(c.id, 'b', sdp(c.b))
      out.push({ pa: mPort(toA), pb: mPort(toB) })
    }
    return { ports: out, sockets: relay.ports }
  },
  async totals () { return relay.totals() },
  async teardown ({ ids }) {
    for (const id of ids) relay.delete(id)
    return { calls: relay.calls }
  },
  async stop () {
    await relay?.stop()
    setImmediate(() => process.exit(0))
    return {}
  }
}

process.on('message', (msg) => {
  const op = ops[msg.op]
  Promise.resolve(op == null ? Promise.reject(new Error(`unknown op ${msg.op}`)) : op(msg))
    .then((result) => { process.send({ id: msg.id, result }) })
    .catch((err) => { process.send({ id: msg.id, error: String(err?.stack ?? err) }) })
})
process.on('disconnect', () => { process.exit(0) })
