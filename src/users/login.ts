import { foldName, nameProblem } from '../core/index.js'
import { InvalidLoginError } from './errors.js'

/**
 * Login rule: the shared name rule of core/names.ts (NFKC, lowercased, then `[a-z0-9][a-z0-9.-]{1,62}` with no
 * `..`, `.-`, `-.`, no trailing `.` or `-` and no punycode label). Anything outside ASCII after NFKC (Cyrillic `а`
 * posing as Latin `a`, zero-width joiners, ...) is refused, so two logins that look the same are the same login or
 * one of them is invalid.
 */
export function normalizeLogin (raw: string): string {
  const login = foldName(raw)
  const problem = nameProblem(login)
  if (problem != null) throw new InvalidLoginError(raw, problem)
  return login
}

/** Like {@link normalizeLogin} but returns undefined instead of throwing (for the SIP hot path). */
export function tryNormalizeLogin (raw: string): string | undefined {
  const login = foldName(raw)
  return nameProblem(login) == null ? login : undefined
}
