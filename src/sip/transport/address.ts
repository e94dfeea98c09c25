import { isIP } from 'node:net'

/** '[::1]' → '::1'; anything else unchanged. Flows and sockets use IPv6 without brackets. */
export function unbracket (address: string): string {
  return address.length > 1 && address.charCodeAt(0) === 0x5b && address.charCodeAt(address.length - 1) === 0x5d
    ? address.slice(1, -1)
    : address
}

/**
 * '::ffff:192.0.2.1' → '192.0.2.1', so a dual-stack socket reports IPv4 peers the way an IPv4 socket would
 * (flow ids, Via received= and bindings then agree whichever socket a phone reached).
 */
export function unmapIPv4 (address: string): string {
  return address.length > 7 && address.startsWith('::ffff:') && address.includes('.', 7) ? address.slice(7) : address
}

/** An address in flow form: no brackets, IPv4-mapped IPv6 shown as IPv4. */
export function normalizeAddress (address: string | undefined): string {
  return address == null ? '' : unmapIPv4(unbracket(address))
}

/** Host part of a `<ip>:<port>` key: IPv6 in brackets so the port stays unambiguous. */
export function hostPort (address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`
}

/** 4 or 6 for an IP literal (brackets allowed), 0 for anything else (host names are resolved by the caller). */
export function ipFamily (address: string): 0 | 4 | 6 {
  return isIP(unbracket(address)) as 0 | 4 | 6
}
