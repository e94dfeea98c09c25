import { InvalidCidrError } from './errors.js'

/** Every IPv4 and IPv6 destination. */
export const ALLOW_ANY: readonly string[] = Object.freeze(['0.0.0.0/0', '::/0'])

/** One CIDR in IPv6 space: IPv4 networks are stored as IPv4-mapped (`::ffff:a.b.c.d`, prefix + 96). */
export interface Cidr {
  readonly bytes: Uint8Array // 16 bytes, host bits cleared
  readonly prefix: number // 0..128
}

const DEC_OCTET = /^(?:0|[1-9]\d{0,2})$/
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/

function parseIPv4Into (s: string, out: Uint8Array, offset: number): boolean {
  const parts = s.split('.')
  if (parts.length !== 4) return false
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string
    // leading zeros are refused: some stacks read them as octal
    if (!DEC_OCTET.test(p)) return false
    const n = Number(p)
    if (n > 255) return false
    out[offset + i] = n
  }
  return true
}

function parseGroups (part: string): string[] | undefined {
  if (part === '') return []
  const groups = part.split(':')
  for (const g of groups) if (!HEX_GROUP.test(g)) return undefined
  return groups
}

function parseIPv6 (input: string): Uint8Array | undefined {
  let s = input
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  const out = new Uint8Array(16)
  let words = 8
  // trailing dotted quad: '::ffff:127.0.0.1', '64:ff9b::192.0.2.1'
  const lastColon = s.lastIndexOf(':')
  if (lastColon === -1) return undefined
  if (s.includes('.', lastColon)) {
    if (!parseIPv4Into(s.slice(lastColon + 1), out, 12)) return undefined
    // keep the colon when it belongs to '::' so the split below still sees it
    s = s[lastColon - 1] === ':' ? s.slice(0, lastColon + 1) : s.slice(0, lastColon)
    words = 6
  }
  const dbl = s.indexOf('::')
  let head: string[] | undefined
  let tail: string[] | undefined
  if (dbl === -1) {
    head = parseGroups(s)
    tail = []
    if (head == null || head.length !== words) return undefined
  } else {
    if (s.includes('::', dbl + 1)) return undefined
    head = parseGroups(s.slice(0, dbl))
    tail = parseGroups(s.slice(dbl + 2))
    // '::' stands for at least one group
    if (head == null || tail == null || head.length + tail.length > words - 1) return undefined
  }
  for (let i = 0; i < head.length; i++) writeWord(out, i, head[i] as string)
  for (let i = 0; i < tail.length; i++) writeWord(out, words - tail.length + i, tail[i] as string)
  return out
}

function writeWord (out: Uint8Array, index: number, hex: string): void {
  const v = parseInt(hex, 16)
  out[index * 2] = v >> 8
  out[index * 2 + 1] = v & 0xff
}

/**
 * Parses an IPv4 or IPv6 literal (brackets and a `%zone` allowed) into 16 bytes, IPv4 as IPv4-mapped IPv6.
 * Returns undefined for anything else, host names included.
 */
export function parseIp (address: string): Uint8Array | undefined {
  let s = address
  if (s.length > 1 && s[0] === '[' && s[s.length - 1] === ']') s = s.slice(1, -1)
  if (s.includes(':')) return parseIPv6(s)
  const out = new Uint8Array(16)
  out[10] = 0xff
  out[11] = 0xff
  return parseIPv4Into(s, out, 12) ? out : undefined
}

/** Parses `a.b.c.d/n` or `x::y/n` (a bare address means a single host). Throws {@link InvalidCidrError}. */
export function parseCidr (cidr: string): Cidr {
  const text = cidr.trim()
  const slash = text.indexOf('/')
  const addr = slash === -1 ? text : text.slice(0, slash)
  const bytes = parseIp(addr)
  if (bytes == null) throw new InvalidCidrError(cidr, 'not an IPv4 or IPv6 address')
  const v4 = !addr.includes(':')
  const max = v4 ? 32 : 128
  let prefix = max
  if (slash !== -1) {
    const p = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw new InvalidCidrError(cidr, `prefix must be 0..${max}`)
    prefix = Number(p)
  }
  if (v4) prefix += 96
  clearHostBits(bytes, prefix)
  return { bytes, prefix }
}

function clearHostBits (bytes: Uint8Array, prefix: number): void {
  for (let i = 0; i < 16; i++) {
    const bits = prefix - i * 8
    if (bits >= 8) continue
    bytes[i] = bits <= 0 ? 0 : (bytes[i] as number) & (0xff << (8 - bits))
  }
}

/** True when `ip` (16 bytes from {@link parseIp}) lies in `cidr`. */
export function cidrContains (cidr: Cidr, ip: Uint8Array): boolean {
  const full = cidr.prefix >> 3
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip[i]) return false
  const rest = cidr.prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return ((ip[full] as number) & mask) === cidr.bytes[full]
}

// Never valid unicast destinations whatever the allow list says: 0.0.0.0/8 ("this network", which Linux
// delivers to the local host), IPv4 multicast and broadcast, IPv6 unspecified and multicast.
const NEVER: readonly Cidr[] = ['0.0.0.0/8', '224.0.0.0/4', '255.255.255.255/32', '::/128', 'ff00::/8'].map(parseCidr)

/**
 * Which destinations this node may send SIP to (an operator's guard against being used to reach internal
 * networks). Matching happens in IPv6 space, so IPv4 rules also match IPv4-mapped addresses (`::ffff:127.0.0.1`).
 */
export class EgressPolicy {
  private readonly rules: readonly Cidr[]
  private readonly any: boolean

  /** @param allow CIDRs or single addresses; the default allows every unicast destination. Throws {@link InvalidCidrError}. */
  constructor (allow: readonly string[] = ALLOW_ANY) {
    this.rules = allow.map(parseCidr)
    this.any = this.rules.some(r => r.prefix === 0)
  }

  /** Checks an allow list without building a policy; returns the first bad entry's error, if any. */
  static validate (allow: readonly string[]): InvalidCidrError | undefined {
    for (const c of allow) {
      try { parseCidr(c) } catch (err) { return err as InvalidCidrError }
    }
    return undefined
  }

  /** True when `address` is an IP literal inside the allow list. Host names are never allowed (resolve first). */
  allows (address: string): boolean {
    const ip = parseIp(address)
    if (ip == null) return false
    for (const r of NEVER) if (cidrContains(r, ip)) return false
    if (this.any) return true
    for (const r of this.rules) if (cidrContains(r, ip)) return true
    return false
  }
}
