// Character classes of RFC 3261 §25.1, as lookup tables indexed by char code (< 128).

function table (chars: string, alnum: boolean): Uint8Array {
  const t = new Uint8Array(128)
  if (alnum) {
    for (let c = 48; c <= 57; c++) t[c] = 1
    for (let c = 65; c <= 90; c++) t[c] = 1
    for (let c = 97; c <= 122; c++) t[c] = 1
  }
  for (let k = 0; k < chars.length; k++) t[chars.charCodeAt(k)] = 1
  return t
}

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
const TOKEN = table('-.!%*_+`\'~', true)
/** hostname and IPv4 characters (underscore tolerated: seen in the wild) */
const HOST = table('-._', true)
/** paramchar = param-unreserved / unreserved / escaped (the % of an escape included) */
const PARAM = table('[]/:&+$-_.!~*\'()%', true)
/** user and password characters: RFC 3261 user-unreserved / unreserved / escaped, plus "#" that phones send unescaped */
const USER = table('&=+$,;?/-_.!~*\'()%:#', true)
/** hvalue / hname characters of URI headers (?a=b&c=d) */
const HCHAR = table('[]/?:+$-_.!~*\'()%', true)
/** generic-param value outside quotes: token, host (IPv6 reference included) and the IPv6 of received= */
const PVALUE = table('-.!%*_+`\'~:[]', true)
/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (first char checked apart) */
const SCHEME = table('+-.', true)
const HEX = table('abcdefABCDEF', false)
for (let c = 48; c <= 57; c++) HEX[c] = 1

export const isToken = (c: number): boolean => c < 128 && TOKEN[c] === 1
export const isHostChar = (c: number): boolean => c < 128 && HOST[c] === 1
export const isParamChar = (c: number): boolean => c < 128 && PARAM[c] === 1
export const isUserChar = (c: number): boolean => c < 128 && USER[c] === 1
export const isHeaderChar = (c: number): boolean => c < 128 && HCHAR[c] === 1
export const isParamValueChar = (c: number): boolean => c < 128 && PVALUE[c] === 1
export const isSchemeChar = (c: number): boolean => c < 128 && SCHEME[c] === 1
export const isHex = (c: number): boolean => c < 128 && HEX[c] === 1
export const isDigit = (c: number): boolean => c >= 48 && c <= 57
export const isAlpha = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
/** SP / HTAB, and CR / LF for values handed over still folded */
export const isWs = (c: number): boolean => c === 32 || c === 9 || c === 13 || c === 10

/** True when `s` is a non-empty token (methods, header names, option tags). */
export function isTokenString (s: string): boolean {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) if (!isToken(s.charCodeAt(i))) return false
  return true
}
