// sip/auth: SIP digest authentication primitives (RFC 2617, RFC 7616, RFC 8760), HMAC nonces, failure limiting.
// Imports: node:crypto and core/ only. Knows nothing of users, stores or transactions.
// Public API: computeHa1, computeResponse, verifyResponse, parseCredentials, parseChallenge, buildChallenge, formatCredentials, NonceManager, FailureLimiter, AuthParameterError.
export {
  computeHa1,
  computeResponse,
  verifyResponse,
  parseCredentials,
  parseChallenge,
  buildChallenge,
  formatCredentials
} from './digest.js'
export type {
  DigestAlgorithm,
  DigestQop,
  DigestCredentials,
  DigestChallenge,
  ChallengeOptions,
  ResponseInput,
  VerifyOptions
} from './digest.js'
export { NonceManager } from './nonce.js'
export type { NonceManagerInit, NonceStatus } from './nonce.js'
export { FailureLimiter } from './rate-limit.js'
export type { FailureLimiterInit } from './rate-limit.js'
export { AuthParameterError } from './errors.js'
