import { InvalidLoginError } from './errors.js'

/**
 * Login rule: NFKC, lowercased, then `[a-z0-9][a-z0-9.-]{1,62}` with no `..`, `.-`, `-.` and no trailing `.` or `-`.
 * Anything outside ASCII after NFKC (Cyrillic `а` posing as Latin `a`, zero-width joiners, ...) is refused, so two
 * logins that look the same are the same login or one of them is invalid.
 */
const LOGIN_RE = /^[a-z0-9][a-z0-9.-]{1,62}$/

export function normalizeLogin (raw: string): string {
  const login = raw.normalize('NFKC').toLowerCase()
  if (!LOGIN_RE.test(login)) {
    throw new InvalidLoginError(raw, 'must be 2-63 characters of a-z, 0-9, "." and "-", starting with a letter or digit')
  }
  if (/\.\.|\.-|-\.|[.-]$/.test(login)) {
    throw new InvalidLoginError(raw, 'must not end with "." or "-" nor hold "..", ".-" or "-."')
  }
  return login
}

/** Like {@link normalizeLogin} but returns undefined instead of throwing (for the SIP hot path). */
export function tryNormalizeLogin (raw: string): string | undefined {
  try { return normalizeLogin(raw) } catch { return undefined }
}
