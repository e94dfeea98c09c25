import { isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'

/**
 * Whether an IP address is a public one: not loopback, link-local, RFC 1918, CGNAT (100.64/10, RFC 6598),
 * documentation, benchmarking, multicast or unspecified, nor an IPv6 ULA or link-local address.
 */
export function isPublicIp (ip: string): boolean {
  if (isIPv4(ip)) {
    const [a = 0, b = 0, c = 0] = ip.split('.').map(Number)
    if (a === 0 || a === 10 || a === 127 || a >= 224) return false
    if (a === 169 && b === 254) return false
    if (a === 172 && b >= 16 && b <= 31) return false
    if (a === 192 && b === 168) return false
    if (a === 100 && b >= 64 && b <= 127) return false
    if (a === 192 && b === 0 && (c === 0 || c === 2)) return false
    if (a === 198 && (b === 18 || b === 19)) return false
    if (a === 198 && b === 51 && c === 100) return false
    if (a === 203 && b === 0 && c === 113) return false
    return true
  }
  if (isIPv6(ip)) {
    const l = ip.toLowerCase()
    if (l === '::' || l === '::1') return false
    if (/^f[cd]/.test(l) || /^fe[89ab]/.test(l) || l.startsWith('ff') || l.startsWith('2001:db8')) return false
    if (l.startsWith('::ffff:')) return isPublicIp(l.slice(7))
    return true
  }
  return false
}

/**
 * Whether a multiaddr starts with a public /ip4 or /ip6 address; a wildcard (`0.0.0.0`, `::`) is public when one
 * of the machine's interfaces holds a public address.
 */
export function isPublicMultiaddr (addr: string): boolean {
  const m = /^\/ip[46]\/([^/]+)/.exec(addr)
  if (m == null) return false
  const ip = m[1]!
  if (ip === '0.0.0.0' || ip === '::') {
    return Object.values(networkInterfaces()).some(list => (list ?? []).some(a => isPublicIp(a.address)))
  }
  return isPublicIp(ip)
}
