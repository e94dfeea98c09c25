// users: accounts (login, display name, digest HA1s) and the login rule. May import core, store (types), sip/auth.
// Public API: Users, UserRecord, Credentials, normalizeLogin, tryNormalizeLogin, named errors.
export { Authenticator, type AuthenticatorInit, type AuthenticatorComponents } from './authenticator.js'
export { Users, type UserRecord, type Credentials, type NewUser, type UsersInit, type UsersComponents, type ImportResult, type UsersEvents } from './users.js'
export { normalizeLogin, tryNormalizeLogin } from './login.js'
export { parseCsv } from './csv.js'
export * from './errors.js'
export { Pbx, parseTrunkUser, checkE164, didOf, TRUNK_SEPARATOR, E164_RE, type TrunkRecord, type TrunkKind, type PbxSettings, type PbxMode, type DidRoute, type NewTrunk, type PbxComponents, type PbxInit, type PbxTarget, type PbxEvents } from './pbx.js'
