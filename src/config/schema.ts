import { isIP } from 'node:net'
import { ConfigError, nameProblem } from '../core/index.js'

/** One config key: its type, default and the line that documents it (config.example.toml, docs/config.md). */
export interface Field {
  type: 'string' | 'integer' | 'boolean' | 'string[]'
  default: string | number | boolean | string[]
  doc: string
  min?: number
  max?: number
  /** allowed values (for strings and list items) */
  values?: readonly string[]
  /** extra check; returns the reason when the value is bad */
  check?: (value: any) => string | undefined
}

const port = (doc: string, def: number) => ({ type: 'integer' as const, default: def, min: 0, max: 65535, doc })
const seconds = (doc: string, def: number, min = 0, max = 86_400 * 365) => ({ type: 'integer' as const, default: def, min, max, doc })

const CIDR_RE = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:.]+)\/\d{1,3}$/

/**
 * Every config key, one table per module. Keys are snake_case in TOML and environment variables
 * (`M1NODE_<TABLE>_<KEY>`, e.g. M1NODE_SIP_UDP_PORT); the loaded config is camelCase.
 */
export const SCHEMA = {
  node: {
    name: { type: 'string', default: '', doc: 'Name of this node in the network (a login-like name). Empty: chosen by `m1node init` / first start from the node identity.', check: (v: string) => v === '' ? undefined : nameProblem(v) },
    data_dir: { type: 'string', default: '~/.m1node', doc: 'Data directory: identity key, LevelDB store, control token. `--data` overrides it.' }
  },
  sip: {
    domain: { type: 'string', default: '', doc: 'SIP domain of this node\'s users (login@domain). Empty: the node name. Requests to any address the node listens on are local too.' },
    aliases: { type: 'string[]', default: [], doc: 'Other host names that mean this node (e.g. its DNS names).' },
    host: { type: 'string', default: '0.0.0.0', doc: 'Address the SIP transports listen on.' },
    transports: { type: 'string[]', default: ['udp', 'tcp', 'ws'], values: ['udp', 'tcp', 'ws'], doc: 'SIP transports to run.' },
    udp_port: port('UDP port (0: any free port).', 5060),
    tcp_port: port('TCP port (0: any free port).', 5060),
    ws_port: port('WebSocket (RFC 7118) port (0: any free port).', 5066),
    egress_allow: { type: 'string[]', default: ['0.0.0.0/0', '::/0'], doc: 'CIDR ranges the node may send SIP to; anything else is refused before it leaves.', check: (v: string[]) => v.every(c => CIDR_RE.test(c)) ? undefined : 'every entry must be a CIDR range like 127.0.0.0/8' },
    advertised_address: { type: 'string', default: '', doc: 'Address written into Via and Contact of requests the node sends. Empty: sip.host, or the first non-loopback IPv4 when sip.host is 0.0.0.0.' },
    force_rport: { type: 'boolean', default: true, doc: 'Answer to the source address and port of a request even without rport in its Via (RFC 3581 behaviour for every client).' },
    tcp_idle_timeout: seconds('Seconds after which an idle TCP connection is closed.', 600, 1),
    max_connections: { type: 'integer', default: 10_000, min: 1, max: 1_000_000, doc: 'Most TCP and WebSocket connections open at once.' },
    t1: { type: 'integer', default: 500, min: 50, max: 10_000, doc: 'RFC 3261 timer T1, milliseconds (round-trip estimate).' },
    t2: { type: 'integer', default: 4000, min: 100, max: 60_000, doc: 'RFC 3261 timer T2, milliseconds (longest retransmit interval).' },
    t4: { type: 'integer', default: 5000, min: 100, max: 60_000, doc: 'RFC 3261 timer T4, milliseconds (longest time a message stays in the network).' }
  },
  registrar: {
    min_expires: seconds('Shortest registration accepted; shorter gets 423 Interval Too Brief.', 60, 1, 86_400),
    max_expires: seconds('Longest registration granted; longer is cut down.', 7200, 1, 86_400 * 7),
    default_expires: seconds('Registration length when the device asks none.', 3600, 1, 86_400 * 7),
    max_contacts: { type: 'integer', default: 100, min: 1, max: 100_000, doc: 'Contacts one login may hold at once (phones, softphones, PBX trunks).' },
    keepalive_interval: seconds('Seconds between OPTIONS pings to UDP devices behind NAT (0: none).', 30),
    keepalive_failures: { type: 'integer', default: 3, min: 0, max: 100, doc: 'Unanswered pings in a row after which a NATed UDP binding is dropped (0: never).' }
  },
  auth: {
    realm: { type: 'string', default: '', doc: 'Digest realm. Empty: the SIP domain. Changing it invalidates stored password hashes.' },
    algorithms: { type: 'string[]', default: ['MD5'], values: ['MD5', 'SHA-256'], doc: 'Digest algorithms challenged with, in order. Every user has MD5 and SHA-256 hashes; offering two challenges breaks clients that read only the first (SIPp, sipsak) or only the last (sip.js), and baresip 1.0 refuses any non-MD5 challenge, so SHA-256 is opt-in: ["SHA-256", "MD5"] for RFC 8760 clients.', check: (v: string[]) => v.length > 0 ? undefined : 'must name at least one algorithm' },
    nonce_lifetime: seconds('Seconds a nonce stays valid; older ones get stale=true.', 300, 10, 86_400),
    max_failures: { type: 'integer', default: 10, min: 1, max: 10_000, doc: 'Authentication failures per source address or per login within failure_window before a block.' },
    failure_window: seconds('Window, in seconds, in which failures are counted.', 60, 1),
    block_time: seconds('Seconds a blocked address or login gets 403.', 300, 1)
  },
  routing: {
    allow_anonymous: { type: 'boolean', default: true, doc: 'Callers from other domains may call local users without an account (a public SIP domain). Requests for anything but a local user always need authentication (no open relay).' },
    sip_egress: { type: 'boolean', default: false, doc: 'Authenticated local users may call plain SIP addresses that are no m1 nodes (sip:user@IP[:port]), sent by ordinary SIP to that host; names are not resolved.' },
    ring_timeout: seconds('Seconds a call may ring before the caller gets 480.', 60, 5, 3600),
    max_calls: { type: 'integer', default: 0, min: 0, max: 1_000_000, doc: 'Calls at once on the node (0: no cap); over it callers get 503 with Retry-After.' },
    max_calls_per_login: { type: 'integer', default: 0, min: 0, max: 1_000_000, doc: 'Calls at once per login, as caller or callee (0: no cap).' }
  },
  media: {
    anchor: { type: 'string', default: 'always', values: ['always', 'nat', 'never'], doc: 'Relay call media through the node: always, only when a side is behind NAT, or never (SDP passes end to end). Calls to and from other m1 nodes are always relayed.' },
    host: { type: 'string', default: '0.0.0.0', doc: 'Address the media relay\'s UDP sockets bind to.' },
    advertised_address: { type: 'string', default: '', doc: 'IPv4 address written into relayed SDP. Empty: media.host, or the first non-loopback IPv4 when it is 0.0.0.0.' },
    port_min: { type: 'integer', default: 20000, min: 1024, max: 65534, doc: 'Lowest UDP port of the relay (RTP on even ports, RTCP on the next).' },
    port_max: { type: 'integer', default: 30000, min: 1025, max: 65535, doc: 'Highest UDP port of the relay.' },
    timeout: seconds('Seconds without media in either direction before an answered call is torn down.', 60, 5, 86_400)
  },
  p2p: {
    enabled: { type: 'boolean', default: true, doc: 'Join the m1 network: run the libp2p node (private Kademlia DHT) and the directory.' },
    listen: { type: 'string[]', default: ['/ip4/0.0.0.0/tcp/4001'], doc: 'libp2p TCP multiaddrs to listen on (port 0: any free port).', check: (v: string[]) => v.every(a => a.startsWith('/')) ? undefined : 'every entry must be a multiaddr like /ip4/0.0.0.0/tcp/4001' },
    announce: { type: 'string[]', default: [], doc: 'Multiaddrs announced instead of the listening ones (a public address behind a port forward).', check: (v: string[]) => v.every(a => a.startsWith('/')) ? undefined : 'every entry must be a multiaddr' },
    bootstrap: { type: 'string[]', default: [], doc: 'Peers dialled at start, as multiaddrs ending in /p2p/<peer id>. The first node of a network runs with none. `m1node start --bootstrap` adds more.', check: (v: string[]) => v.every(a => a.startsWith('/') && a.includes('/p2p/')) ? undefined : 'every entry must be a multiaddr ending in /p2p/<peer id>' },
    allow_private_addresses: { type: 'boolean', default: false, doc: 'Keep loopback and private addresses in DHT peer records and dial them (LAN and test networks only).' },
    public: { type: 'string', default: 'auto', values: ['auto', 'true', 'false'], doc: 'Whether other nodes can reach this one at its own addresses. false: behind NAT, so reserve slots on relays and announce /p2p-circuit addresses. auto: public when a listen or announce address (or, for 0.0.0.0, an interface) is a public IP, or when allow_private_addresses is on.' },
    relays: { type: 'string[]', default: [], doc: 'Relays to reserve on first when behind NAT, as multiaddrs ending in /p2p/<peer id>. Bootstrap peers that are relays and relays found in the DHT are used too.', check: (v: string[]) => v.every(a => a.startsWith('/') && a.includes('/p2p/') && !a.includes('/p2p-circuit')) ? undefined : 'every entry must be a multiaddr ending in /p2p/<peer id>' },
    relay_reservations: { type: 'integer', default: 2, min: 1, max: 8, doc: 'Relays a node behind NAT holds reservations on at once.' },
    hole_punching: { type: 'boolean', default: true, doc: 'Run DCUtR: a relayed connection moves to a direct one when the NATs allow it.' },
    direct_media: { type: 'boolean', default: true, doc: 'Try a direct UDP path (ICE with an unreliable data channel, /m1/ice/1.0.0) for call media to another node; media moves to it once it answers probes and back to the libp2p stream when it goes quiet.' },
    stun_port: port('UDP port of the STUN responder on the relays this node holds (their relay.stun_port), used as ICE servers for direct media.', 3478)
  },
  relay: {
    enabled: { type: 'boolean', default: false, doc: 'Volunteer as a relay (circuit relay v2 server) for nodes behind NAT, and answer STUN binding requests. `m1node start --relay` turns it on.' },
    max_reservations: { type: 'integer', default: 128, min: 1, max: 100_000, doc: 'Nodes that may hold a reservation at once; more are refused (they use another relay).' },
    max_circuits: { type: 'integer', default: 256, min: 1, max: 100_000, doc: 'Relayed connections open at once; new ones beyond are refused, open ones are never cut.' },
    max_peer_kbps: { type: 'integer', default: 0, min: 0, max: 100_000_000, doc: 'Kilobits per second relayed for one node (both directions) above which it gets no new relayed connection (0: no cap). A G.711 call is about 90 kbit/s each way.' },
    max_total_kbps: { type: 'integer', default: 0, min: 0, max: 100_000_000, doc: 'Kilobits per second relayed in total above which new reservations and relayed connections are refused (0: no cap).' },
    reservation_ttl: seconds('Seconds a reservation lasts before the node behind NAT must refresh it.', 3600, 120, 86_400),
    stun: { type: 'boolean', default: true, doc: 'Answer STUN binding requests (RFC 5389, UDP) so nodes behind NAT learn their public mapping.' },
    stun_port: port('UDP port of the STUN responder (0: any free port).', 3478)
  },
  directory: {
    record_ttl: seconds('Seconds a published node or login record stays valid; an owner that stops republishing loses its names after this.', 86_400, 600, 7 * 86_400),
    republish_interval: seconds('Seconds between republications of this node\'s records (well below record_ttl).', 14_400, 60, 7 * 86_400),
    cache_ttl: seconds('Seconds a resolved name is answered from memory.', 60, 0, 86_400),
    negative_cache_ttl: seconds('Seconds a name that was not found is answered "not found" from memory.', 10, 0, 3600),
    publish_logins: { type: 'boolean', default: true, doc: 'Publish a login record for every local user (first come, first served across the network).' }
  },
  messaging: {
    enabled: { type: 'boolean', default: true, doc: 'Accept SIP MESSAGE (RFC 3428) and store and forward text messages; off: MESSAGE gets 501.' },
    max_body_bytes: { type: 'integer', default: 65_536, min: 1, max: 262_144, doc: 'Largest MESSAGE body in bytes; larger gets 413.' },
    rate_burst: { type: 'integer', default: 50, min: 1, max: 1_000_000, doc: 'Messages a sender (login, or address of an anonymous sender) may send at once before rate_per_second applies.' },
    rate_per_second: { type: 'integer', default: 10, min: 0, max: 1_000_000, doc: 'Messages per second a sender may keep sending (0: no limit); over it 429 with Retry-After.' },
    inbox_max: { type: 'integer', default: 1000, min: 1, max: 10_000_000, doc: 'Pending messages per receiver (and per destination node); over it senders get 486.' },
    message_ttl: seconds('Seconds a message that cannot be delivered is retried before it fails.', 604_800, 60),
    history_ttl: seconds('Seconds delivered and failed messages stay listed (`m1node msg list`); message ids are deduplicated as long.', 604_800, 60),
    offline_after: { type: 'integer', default: 5, min: 1, max: 1000, doc: 'Failed attempts in a row after which another node is assumed offline and its messages go to its mailboxes.' },
    mailboxes: { type: 'string[]', default: [], doc: 'Peer ids or node names that hold messages for this node while it is offline; published in the node record, pulled at start and every mailbox_poll_interval.', check: (v: string[]) => v.length <= 8 && v.every(m => m.length > 0 && m.length <= 128) ? undefined : 'at most 8 entries of 1-128 characters' },
    mailbox_poll_interval: seconds('Seconds between pulls of this node\'s mailboxes.', 300, 5, 86_400),
    mailbox_hold: seconds('Seconds this node holds a message for another node that named it as mailbox.', 604_800, 60),
    mailbox_max_per_depositor: { type: 'integer', default: 1000, min: 0, max: 10_000_000, doc: 'Messages this node holds as mailbox per depositing node.' },
    mailbox_max_per_node: { type: 'integer', default: 10_000, min: 0, max: 10_000_000, doc: 'Messages this node holds as mailbox per receiving node.' }
  },
  store: {
    sync: { type: 'boolean', default: false, doc: 'fsync each write that a SIP reply acknowledges. Off, writes still survive a killed daemon, not a power cut.' }
  },
  web: {
    enabled: { type: 'boolean', default: true, doc: 'Run the HTTP server: /health, /metrics and the local control API the CLI uses.' },
    host: { type: 'string', default: '127.0.0.1', doc: 'Address of the HTTP server. The control API needs the token in the data dir.' },
    port: port('HTTP port (0: any free port).', 5080)
  },
  pbx: {
    did_providers: { type: 'string[]', default: [], doc: 'Source addresses (IP literals) of DID providers whose INVITEs to a routed DID are taken without an account (servers of [[upstream]] registrations are taken too). Anyone else calling a DID needs to authenticate.', check: (v: string[]) => v.every(a => isIP(a) !== 0) ? undefined : 'every entry must be an IP address' },
    distribution: { type: 'string', default: 'failover', values: ['failover', 'roundrobin', 'parallel'], doc: 'How calls reach the registered contacts of a PBX trunk unless a login sets its own: failover (one at a time by q-value, next on 5xx, 408 or no answer), roundrobin (in turn, with failover), parallel (all at once).' },
    failover_timeout: seconds('Seconds a PBX trunk contact may send nothing at all (not even 100 Trying) before failover tries the next contact (0: wait for the transaction timeout, 32 s with the default T1).', 5, 0, 60),
    announce_dids: { type: 'boolean', default: true, doc: 'Announce every routed DID in the directory as a signed /m1/did/<number> record, so other nodes call it over the network.' }
  },
  log: {
    level: { type: 'string', default: 'info', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], doc: 'Log level.' }
  }
} as const satisfies Record<string, Record<string, Field>>

/**
 * Arrays of tables (`[[upstream]]`): one schema per entry. Their keys have no environment override; a missing
 * key without default (`default: undefined`) is an error naming `upstream[i].key`.
 */
export const ARRAY_SCHEMA = {
  upstream: {
    server: { type: 'string', default: '', doc: 'Registrar of the provider, `host[:port]` (port 5060 when left out).', check: (v: string) => /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(v) ? undefined : 'must be host[:port]' },
    username: { type: 'string', default: '', doc: 'Account name at the provider (From/To user and digest username).', check: (v: string) => /^[^\s@<>"]{1,128}$/.test(v) ? undefined : 'must be 1-128 characters without spaces, @, <, > or quotes' },
    password: { type: 'string', default: '', doc: 'Password at the provider; never logged.' },
    auth_username: { type: 'string', default: '', doc: 'Digest username when it differs from username.' },
    domain: { type: 'string', default: '', doc: 'Domain of the account (Request-URI, From and To host). Empty: the host of server.' },
    expiry: { type: 'integer', default: 3600, min: 60, max: 86_400, doc: 'Registration length asked for, seconds; the node refreshes at about 85 % of what the provider grants.' },
    transport: { type: 'string', default: 'udp', values: ['udp', 'tcp'], doc: 'Transport to the provider.' },
    contact_user: { type: 'string', default: '', doc: 'User part of the registered Contact, which the provider puts in the Request-URI of inbound calls (a DID routed here). Empty: username.' }
  }
} as const satisfies Record<string, Record<string, Field>>

type Schema = typeof SCHEMA
type ArraySchema = typeof ARRAY_SCHEMA
type Camel<S extends string> = S extends `${infer H}_${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S
type ValueOf<F> = F extends { type: 'integer' } ? number : F extends { type: 'boolean' } ? boolean : F extends { type: 'string[]' } ? string[] : string

/** The validated, frozen config: one table per module, camelCase keys. */
export type M1Config = { readonly [T in keyof Schema]: { readonly [K in keyof Schema[T] as Camel<K & string>]: ValueOf<Schema[T][K]> } } &
{ readonly [T in keyof ArraySchema]: ReadonlyArray<{ readonly [K in keyof ArraySchema[T] as Camel<K & string>]: ValueOf<ArraySchema[T][K]> }> }

/** One `[[upstream]]` entry of the validated config. */
export type UpstreamConfig = M1Config['upstream'][number]

export function camel (key: string): string {
  return key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
}

/** Every key path, e.g. `sip.udp_port`, with its field. */
export function fields (): Array<[string, Field]> {
  const out: Array<[string, Field]> = []
  for (const [table, keys] of Object.entries(SCHEMA)) {
    for (const [key, field] of Object.entries(keys)) out.push([`${table}.${key}`, field as Field])
  }
  return out
}

/** Environment variable of a key path: `sip.udp_port` -> `M1NODE_SIP_UDP_PORT`. */
export function envName (path: string): string {
  return 'M1NODE_' + path.replace(/\./g, '_').toUpperCase()
}

/** Checks one value against its field; throws ConfigError naming the path. */
export function checkValue (path: string, field: Field, value: unknown): unknown {
  const fail = (reason: string): never => { throw new ConfigError(path, reason) }
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') fail(`must be a string, got ${describe(value)}`)
      if (field.values != null && !field.values.includes(value as string)) fail(`must be one of ${field.values.join(', ')}`)
      break
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value)) fail(`must be an integer, got ${describe(value)}`)
      if (field.min != null && (value as number) < field.min) fail(`must be at least ${field.min}`)
      if (field.max != null && (value as number) > field.max) fail(`must be at most ${field.max}`)
      break
    case 'boolean':
      if (typeof value !== 'boolean') fail(`must be true or false, got ${describe(value)}`)
      break
    case 'string[]':
      if (!Array.isArray(value) || value.some(v => typeof v !== 'string')) fail(`must be a list of strings, got ${describe(value)}`)
      if (field.values != null) {
        const bad = (value as string[]).find(v => !field.values!.includes(v))
        if (bad != null) fail(`"${bad}" is not one of ${field.values.join(', ')}`)
      }
      break
  }
  const reason = field.check?.(value)
  if (reason != null) fail(reason)
  return value
}

/** Parses an environment variable's text for a field (lists are comma-separated). */
export function fromEnv (path: string, field: Field, text: string): unknown {
  switch (field.type) {
    case 'integer': {
      if (!/^-?\d+$/.test(text.trim())) throw new ConfigError(path, `must be an integer, got "${text}" (from ${envName(path)})`)
      return Number(text)
    }
    case 'boolean': {
      const t = text.trim().toLowerCase()
      if (['true', '1', 'yes', 'on'].includes(t)) return true
      if (['false', '0', 'no', 'off'].includes(t)) return false
      throw new ConfigError(path, `must be true or false, got "${text}" (from ${envName(path)})`)
    }
    case 'string[]':
      return text.split(',').map(s => s.trim()).filter(s => s !== '')
    default:
      return text
  }
}

function describe (v: unknown): string {
  if (Array.isArray(v)) return 'a list'
  if (v === null) return 'null'
  if (typeof v === 'object') return 'a table'
  return `${typeof v} ${JSON.stringify(v)}`
}

/**
 * Validates raw tables (from TOML, already merged with env and flags) against the schema: unknown tables or keys
 * are errors (a typo must not pass silently), missing keys take their default. Returns a deep-frozen config.
 */
export function validate (raw: Record<string, unknown>): M1Config {
  const out: Record<string, Record<string, unknown>> = {}
  for (const [table, value] of Object.entries(raw)) {
    if (table in ARRAY_SCHEMA) continue
    if (!(table in SCHEMA)) throw new ConfigError(table, 'unknown table')
    if (value == null || typeof value !== 'object' || Array.isArray(value)) throw new ConfigError(table, 'must be a table')
    for (const key of Object.keys(value)) {
      if (!(key in (SCHEMA as Record<string, object>)[table]!)) throw new ConfigError(`${table}.${key}`, 'unknown key')
    }
  }
  for (const [table, keys] of Object.entries(SCHEMA)) {
    const given = (raw[table] ?? {}) as Record<string, unknown>
    const t: Record<string, unknown> = {}
    for (const [key, field] of Object.entries(keys)) {
      const path = `${table}.${key}`
      const value = key in given ? given[key] : structuredClone((field as Field).default)
      t[camel(key)] = checkValue(path, field as Field, value)
    }
    out[table] = t
  }
  for (const [table, keys] of Object.entries(ARRAY_SCHEMA)) {
    const given = raw[table] ?? []
    if (!Array.isArray(given)) throw new ConfigError(table, `must be an array of tables ([[${table}]])`)
    ;(out as Record<string, unknown>)[table] = given.map((entry: unknown, i: number) => {
      const at = `${table}[${i}]`
      if (entry == null || typeof entry !== 'object' || Array.isArray(entry)) throw new ConfigError(at, 'must be a table')
      for (const key of Object.keys(entry)) if (!(key in keys)) throw new ConfigError(`${at}.${key}`, 'unknown key')
      const t: Record<string, unknown> = {}
      for (const [key, field] of Object.entries(keys)) {
        const value = key in entry ? (entry as Record<string, unknown>)[key] : structuredClone((field as Field).default)
        t[camel(key)] = checkValue(`${at}.${key}`, field as Field, value)
      }
      for (const key of ['server', 'username', 'password']) if (t[key] === '') throw new ConfigError(`${at}.${key}`, 'is required')
      return t
    })
  }
  const cfg = out as unknown as M1Config
  if (cfg.registrar.minExpires > cfg.registrar.maxExpires) throw new ConfigError('registrar.min_expires', 'must not exceed registrar.max_expires')
  if (cfg.sip.t1 > cfg.sip.t2) throw new ConfigError('sip.t1', 'must not exceed sip.t2')
  if (cfg.directory.republishInterval * 2 > cfg.directory.recordTtl) throw new ConfigError('directory.republish_interval', 'must be at most half of directory.record_ttl')
  if (cfg.media.portMin + 2 > cfg.media.portMax) throw new ConfigError('media.port_min', 'must be at least 2 below media.port_max')
  return deepFreeze(cfg)
}

function deepFreeze<T> (o: T): T {
  if (o != null && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v)
    Object.freeze(o)
  }
  return o
}
