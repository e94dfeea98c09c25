import { networkInterfaces } from 'node:os'
import type { NodeInfo } from '../node.js'

/** The start-up banner: where the node listens and the three things a phone needs. */
export function banner (info: NodeInfo): string {
  // the SIP-over-libp2p transport is reached by peer id, not by address: it is shown with the p2p addresses
  const listeners = info.sip.filter(a => a.transport !== 'P2P')
  const sip = listeners.map(a => `${a.transport} ${a.address}:${a.port}`).join(', ')
  const udp = listeners.find(a => a.transport === 'UDP') ?? listeners[0]
  const host = udp == null ? '?' : udp.address === '0.0.0.0' || udp.address === '::' ? publicGuess() : udp.address
  const server = udp == null ? host : udp.port === 5060 ? host : `${host}:${udp.port}`
  return [
    '',
    `m1node ${info.version}: node ${info.name}`,
    `  SIP domain   ${info.domain} (users are login@${info.domain})`,
    `  listening    ${sip}`,
    ...(info.web != null ? [`  control      ${info.web} (/health, /metrics)`] : []),
    ...(info.p2p != null && info.p2p.length > 0 ? [`  p2p          ${info.p2p.join(', ')}`] : []),
    `  peer id      ${info.peerId}`,
    `  data         ${info.dataDir}`,
    '',
    'Connect a phone, softphone or PBX with three settings:',
    '  login     a user\'s login   (create one: m1node user add <login>)',
    '  password  that user\'s password',
    `  server    ${server}   (UDP or TCP${listeners.some(a => a.transport === 'WS') ? '; WebSocket clients: ws://' + host + ':' + String(listeners.find(a => a.transport === 'WS')!.port) : ''})`,
    ''
  ].join('\n') + '\n'
}

function publicGuess (): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address
  }
  return '127.0.0.1'
}
