import { tryNormalizeLogin } from '../users/index.js'
import type { SipUri } from '../sip/message/index.js'

/**
 * The local login a Request-URI names: its user part (unescaped, any case) when the host is this node.
 * undefined: the host is not ours; null: ours, but the user part is no login.
 */
export function localLoginOf (uri: SipUri, isLocalDomain: (host: string) => boolean): string | null | undefined {
  if (uri.scheme !== 'sip' && uri.scheme !== 'sips') return undefined
  if (!isLocalDomain(uri.host)) return undefined
  if (uri.user == null) return null
  let user: string
  try { user = decodeURIComponent(uri.user) } catch { return null }
  return tryNormalizeLogin(user) ?? null
}
