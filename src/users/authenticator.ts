import { buildChallenge, verifyResponse, parseCredentials, type DigestAlgorithm, type DigestCredentials } from '../sip/auth/index.js'
import { getHeaders } from '../sip/message/index.js'
import type { SipRequest } from '../sip/message/index.js'
import type { Logger } from '../core/index.js'
import type { Metrics, MetricCounter } from '../core/index.js'
import type { Credentials } from './users.js'
import { AuthBlockedError, AuthRequiredError } from './errors.js'
import { tryNormalizeLogin } from './login.js'
import { parseTrunkUser, TRUNK_SEPARATOR } from './pbx.js'

export interface AuthenticatorComponents {
  users: { credentials: (login: string) => Promise<Credentials | undefined> }
  nonces: {
    issue: () => string
    check: (nonce: string) => 'valid' | 'stale' | 'invalid'
    checkNc: (nonce: string, nc: number) => boolean
  }
  limiter: {
    isBlocked: (key: string) => boolean
    fail: (key: string) => boolean
    succeed: (key: string) => void
  }
  logger?: Logger
  metrics?: Metrics
}

export interface AuthenticatorInit {
  /** realm offered to unknown logins and to users created here */
  realm: string
  /**
   * Challenges sent, in order of preference; credentials of other algorithms are refused.
   * @default ['MD5']
   */
  algorithms: DigestAlgorithm[]
}

/**
 * Digest authentication policy (Kamailio auth over auth_db): challenge, verify, count failures, block.
 * Unknown logins and wrong passwords get the same answer, so the node tells no one which logins exist.
 */
export class Authenticator {
  private readonly failures?: MetricCounter

  constructor (private readonly components: AuthenticatorComponents, private readonly init: AuthenticatorInit) {
    this.failures = components.metrics?.counter('m1node_auth_failures_total', 'Digest authentication failures', ['reason'])
  }

  /**
   * Returns the authenticated login (or trunk username `<login>_<name>`, see pbx.ts), or throws AuthRequiredError (answer 401/407 with the challenges it carries)
   * or AuthBlockedError (answer 403).
   */
  async authenticate (req: SipRequest, source: string, opts: { proxy?: boolean } = {}): Promise<string> {
    const proxy = opts.proxy === true
    if (this.components.limiter.isBlocked(`ip:${source}`)) throw new AuthBlockedError()
    const creds = this.pickCredentials(req, proxy)
    if (creds == null) throw this.challenge(this.init.realm, proxy, false)

    const login = principalOf(creds.username)
    if (login != null && this.components.limiter.isBlocked(`login:${login}`)) throw new AuthBlockedError()
    const user = login != null ? await this.components.users.credentials(login) : undefined
    const realm = user?.realm ?? this.init.realm

    const nonceStatus = this.components.nonces.check(creds.nonce)
    // a nonce we did not issue (or from before a secret change) is no guess at a password: just challenge again
    if (nonceStatus === 'invalid') throw this.challenge(realm, proxy, false)

    const ha1 = user == null ? undefined : creds.algorithm === 'SHA-256' ? user.ha1Sha256 : user.ha1Md5
    const ok = ha1 != null && this.init.algorithms.includes(creds.algorithm) && creds.realm === realm &&
      creds.username === user?.login && verifyResponse(creds, ha1, req.method)
    if (!ok) return this.fail(source, login, realm, proxy, user == null ? 'unknown-user' : 'bad-response')

    if (nonceStatus === 'stale') throw this.challenge(realm, proxy, true)
    if (creds.ncValue != null && !this.components.nonces.checkNc(creds.nonce, creds.ncValue)) {
      return this.fail(source, login, realm, proxy, 'replay')
    }
    this.components.limiter.succeed(`login:${user!.login}`)
    return user!.login
  }

  private fail (source: string, login: string | undefined, realm: string, proxy: boolean, reason: string): never {
    this.failures?.inc({ reason: reason === 'unknown-user' ? 'bad-response' : reason })
    const blockedIp = this.components.limiter.fail(`ip:${source}`)
    const blockedLogin = login != null ? this.components.limiter.fail(`login:${login}`) : false
    this.components.logger?.info({ source, login, reason }, 'authentication failed')
    if (blockedIp || blockedLogin) {
      this.components.logger?.warn({ source, login, blockedIp, blockedLogin }, 'too many authentication failures: blocking')
      throw new AuthBlockedError()
    }
    throw this.challenge(realm, proxy, false)
  }

  private pickCredentials (req: SipRequest, proxy: boolean): DigestCredentials | undefined {
    let fallback: DigestCredentials | undefined
    for (const value of getHeaders(req, proxy ? 'Proxy-Authorization' : 'Authorization')) {
      const creds = parseCredentials(value)
      if (creds == null) continue
      if (creds.realm === this.init.realm) return creds
      fallback ??= creds
    }
    return fallback
  }

  private challenge (realm: string, proxy: boolean, stale: boolean): AuthRequiredError {
    const nonce = this.components.nonces.issue()
    const challenges = this.init.algorithms.map(algorithm => buildChallenge({ realm, nonce, algorithm, stale }))
    return new AuthRequiredError(challenges, proxy)
  }
}

/** The login or trunk username (`<login>_<name>`) a digest username names, normalised; undefined when neither. */
function principalOf (username: string): string | undefined {
  const login = tryNormalizeLogin(username)
  if (login != null) return login
  const t = parseTrunkUser(username)
  return t != null ? `${t.login}${TRUNK_SEPARATOR}${t.name}` : undefined
}
