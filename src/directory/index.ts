// directory: who is where. Signed node, login and SIP domain records in the DHT (first-come names), resolution, search.
// May import core, store (types) and p2p.
// Public API: Directory, RecordValidator, DirectorySearch, record codec (records.ts), named errors.
export { Directory, type DirectoryComponents, type DirectoryInit, type LocalUser, type NamePin, type Resolution } from './directory.js'
export { RecordValidator, type RecordValidatorComponents } from './policy.js'
export { DirectorySearch, DIR_PROTOCOL, MIN_QUERY_LENGTH, MAX_TOKEN_LENGTH, MAX_ANSWER_ENTRIES, MAX_QUERY_LENGTH, tokensOf, tokenBytes, words, matches, queryWords, type SearchInit, type SearchResult, type Listing } from './search.js'
export {
  recordKey, parseRecordKey, isDomainName, canonicalJson, signingBytes, signRecord, decodeRecord, checkOwnership, selectRecord, b64u,
  MAX_RECORD_BYTES, MAX_LIFETIME_MS, MAX_SKEW_MS, SIGNING_PREFIX,
  type DirectoryRecord, type NodeRecord, type LoginRecord, type DomainRecord, type RecordKind, type RecordCommon, type Unsigned
} from './records.js'
export * from './errors.js'
