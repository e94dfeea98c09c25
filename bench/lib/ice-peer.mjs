// One end of an ICE attempt for bench/ladder-lab.mjs, run inside a lab namespace: the real DirectPaths with its
// `/m1/ice/1.0.0` request/answer carried through files in a shared directory instead of libp2p.
// usage: node ice-peer.mjs <offer|answer> <dir> <stun url> <timeout ms>
import { readFile, writeFile, rename } from 'node:fs/promises'
import nodeDataChannel from 'node-datachannel'
import { DirectPaths } from '../../dist/routing/index.js'

const [role, dir, stun, timeoutArg] = process.argv.slice(2)
const timeoutMs = Number(timeoutArg ?? 8000)
const self = role === 'offer' ? 'peer-a' : 'peer-b'
const other = role === 'offer' ? 'peer-b' : 'peer-a'
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))
const t0 = performance.now()
let handler
const poll = async (file) => { for (;;) { try { return JSON.parse(await readFile(file, 'utf8')) } catch {} await sleep(20) } }
const put = async (file, value) => { await writeFile(file + '.tmp', JSON.stringify(value)); await rename(file + '.tmp', file) }

let activeAt
const paths = new DirectPaths({
  p2p: {
    request: async (peer, protocol, frame) => { await put(`${dir}/request.json`, frame); return await poll(`${dir}/answer.json`) },
    handle: async (protocol, h) => { handler = h },
    unhandle: async () => {}
  },
  selfPeerId: () => self,
  iceServers: () => [stun],
  allowed: () => true,
  onFrame: () => {},
  onSwitch: (peer, active) => { if (active && activeAt == null) activeAt = performance.now() - t0 }
}, { timeoutMs, gatherTimeoutMs: 2000, lingerMs: 0 })
await paths.start()
if (role === 'answer') {
  const frame = await poll(`${dir}/request.json`)
  await put(`${dir}/answer.json`, await handler(frame, { peer: other, signal: AbortSignal.timeout(timeoutMs) }))
} else {
  paths.want(other)
}
const deadline = Date.now() + timeoutMs
while (activeAt == null && Date.now() < deadline) await sleep(10)
// stay a moment so the far end's probe is echoed too
await sleep(500)
const pair = (() => { try { return paths.paths.get(other)?.pc.getSelectedCandidatePair() } catch { return undefined } })()
console.log(JSON.stringify({ role, ok: activeAt != null, ms: activeAt != null ? Math.round(activeAt) : null, pair: pair != null ? `${pair.local.type} ${pair.local.address}:${pair.local.port} -> ${pair.remote.type} ${pair.remote.address}:${pair.remote.port}` : null }))
await paths.stop()
await sleep(100)
nodeDataChannel.cleanup()
process.exit(0)
