/**
 * The name rule shared by logins and node names (also the names of directory records).
 *
 * A name is folded first (NFKC, then lowercase), then it must be 2-63 characters of `a-z`, `0-9`, `.` and `-`,
 * start with a letter or digit, hold no `..`, `.-` or `-.`, not end with `.` or `-`, and no label may start with
 * `xn--`. That refuses the look-alike tricks we can name:
 * - fullwidth and other compatibility forms (`ｃｏｃａ`) fold to ASCII under NFKC, so they are the same name;
 * - anything outside ASCII after folding (Cyrillic `а` posing as Latin `a`, Greek `ο`, zero-width joiners,
 *   right-to-left marks, combining accents) is refused rather than kept as a second, look-alike name;
 * - punycode labels (`xn--...`) are refused, so a Unicode homograph cannot come back in its ASCII form.
 */
export const NAME_RE = /^[a-z0-9][a-z0-9.-]{1,62}$/

/** NFKC, then lowercase: the form in which names are compared and stored. */
export function foldName (raw: string): string {
  return raw.normalize('NFKC').toLowerCase()
}

/** Why a folded name is not acceptable, or undefined when it is. */
export function nameProblem (name: string): string | undefined {
  if (!NAME_RE.test(name)) return 'must be 2-63 characters of a-z, 0-9, "." and "-", starting with a letter or digit'
  if (/\.\.|\.-|-\.|[.-]$/.test(name)) return 'must not end with "." or "-" nor hold "..", ".-" or "-."'
  if (/(^|\.)xn--/.test(name)) return 'must not hold punycode labels ("xn--")'
  return undefined
}

/** Folds a name and checks it: the name, or undefined when it breaks the rule. */
export function tryNormalizeName (raw: string): string | undefined {
  const name = foldName(raw)
  return nameProblem(name) == null ? name : undefined
}
