import type { Logger, Metrics, MetricCounter } from '../core/index.js'
import type { P2p } from '../p2p/index.js'
import { BadQueryError, RecordRejectedError } from './errors.js'
import { decodeRecord, recordKey, type LoginRecord } from './records.js'

/** The directory search protocol (docs/protocols.md). */
export const DIR_PROTOCOL = '/m1/dir/1.0.0'
/** Shortest query word that is searched. */
export const MIN_QUERY_LENGTH = 3
/** Longest prefix turned into a search token (longer words are searched by this prefix, then filtered). */
export const MAX_TOKEN_LENGTH = 12
/** Most entries one answer carries. */
export const MAX_ANSWER_ENTRIES = 20
/** Longest query text accepted. */
export const MAX_QUERY_LENGTH = 128

const encoder = new TextEncoder()

/** A listed login this node serves: its signed record, as published. */
export interface Listing { record: LoginRecord, bytes: Uint8Array }

/** One search hit, verified: the record was signed by the node that answered. */
export interface SearchResult { login: string, displayName: string, node: string, peerId: string }

export interface SearchComponents {
  p2p: Pick<P2p, 'peerId' | 'provide' | 'unprovide' | 'findProviders' | 'request' | 'handle' | 'unhandle'>
  /** listed logins of this node */
  listings: () => Listing[]
  logger?: Logger
  metrics?: Metrics
}

export interface SearchInit {
  /** Most results a search returns. @default 50 */
  maxResults?: number
  /** Most providing nodes asked per search. @default 10 */
  maxProviders?: number
  /** Queries a peer may burst. @default 10 */
  rateBurst?: number
  /** Queries per second a peer regains. @default 1 */
  ratePerSecond?: number
  /** Most distinct tokens this node provides. @default 5000 */
  maxTokens?: number
  /** Milliseconds a whole search may take. @default 5000 */
  timeoutMs?: number
}

/** Words of a text: NFKC, lowercase, split on anything that is not a letter or digit. */
export function words (text: string): string[] {
  return text.normalize('NFKC').toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(w => w !== '')
}

/** Search tokens of a listing: every prefix of 3..12 characters of every word of the login and display name. */
export function tokensOf (login: string, displayName: string): string[] {
  const out = new Set<string>()
  for (const w of [...words(login), ...words(displayName)]) {
    const chars = [...w]
    for (let n = MIN_QUERY_LENGTH; n <= Math.min(chars.length, MAX_TOKEN_LENGTH); n++) out.add(chars.slice(0, n).join(''))
  }
  return [...out]
}

/** The bytes a token is provided under (hashed again into a CID by p2p). */
export function tokenBytes (token: string): Uint8Array {
  return encoder.encode('m1-dir-token/v1\n' + token)
}

/** Whether every query word is a prefix of some word of the listing. */
export function matches (queryWords: string[], login: string, displayName: string): boolean {
  const own = [...words(login), ...words(displayName)]
  return queryWords.every(q => own.some(w => w.startsWith(q)))
}

/** Query words worth searching: at least MIN_QUERY_LENGTH characters, at most 4 of them. */
export function queryWords (query: string): string[] {
  if (query.length > MAX_QUERY_LENGTH) throw new BadQueryError(`query longer than ${MAX_QUERY_LENGTH} characters`)
  const ws = words(query).filter(w => [...w].length >= MIN_QUERY_LENGTH)
  if (ws.length === 0) throw new BadQueryError(`query needs a word of at least ${MIN_QUERY_LENGTH} letters or digits`)
  return ws.slice(0, 4)
}

/**
 * Decentralised directory search: a node provides (kad-dht provider records) the hashed tokens of its listed logins;
 * a search finds the providers of its longest word and asks each over `/m1/dir/1.0.0`, verifying every answer.
 */
export class DirectorySearch {
  private provided = new Set<string>()
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private readonly queries?: MetricCounter
  private updating: Promise<void> = Promise.resolve()
  private readonly abort = new AbortController()

  constructor (private readonly components: SearchComponents, private readonly init: SearchInit = {}) {
    this.queries = components.metrics?.counter('m1node_directory_search_queries_total', 'Directory search queries served, by result', ['result'])
  }

  async start (): Promise<void> {
    await this.components.p2p.handle(DIR_PROTOCOL, async (frame, { peer }) => this.answer(frame, peer), { maxInboundStreams: 4, timeoutMs: 5000 })
  }

  async stop (): Promise<void> {
    this.abort.abort()
    await this.components.p2p.unhandle(DIR_PROTOCOL).catch(() => {})
    await this.updating.catch(() => {})
  }

  /** Provides the tokens of the current listings and stops re-providing dropped ones; runs in the background. */
  refreshTokens (): Promise<void> {
    this.updating = this.updating.then(async () => await this.doRefresh()).catch(err => {
      if (!this.abort.signal.aborted) this.components.logger?.warn({ err }, 'cannot provide search tokens')
    })
    return this.updating
  }

  private async doRefresh (): Promise<void> {
    const max = this.init.maxTokens ?? 5000
    const wanted = new Set<string>()
    for (const { record } of this.components.listings()) {
      for (const t of tokensOf(record.name, record.displayName)) {
        if (wanted.size >= max) break
        wanted.add(t)
      }
    }
    const signal = this.abort.signal
    for (const t of this.provided) {
      if (!wanted.has(t)) await this.components.p2p.unprovide(tokenBytes(t), { signal }).catch(() => {})
    }
    const fresh = [...wanted].filter(t => !this.provided.has(t))
    this.provided = wanted
    await runLimited(fresh, 4, async (t) => {
      await this.components.p2p.provide(tokenBytes(t), { signal }).catch((err: unknown) => {
        if (!signal.aborted) this.components.logger?.debug({ err, token: t }, 'provide failed')
      })
    })
  }

  /** Serves one query frame from `peer`. */
  answer (frame: Record<string, unknown>, peer: string): Record<string, unknown> {
    if (!this.allow(peer)) {
      this.queries?.inc({ result: 'rate-limited' })
      return { type: 'error', code: 'rate-limited', message: 'too many queries' }
    }
    if (frame.type !== 'search' || typeof frame.query !== 'string') {
      this.queries?.inc({ result: 'bad-request' })
      return { type: 'error', code: 'bad-request', message: 'expected { type: "search", query }' }
    }
    let qw: string[]
    try {
      qw = queryWords(frame.query)
    } catch (err) {
      this.queries?.inc({ result: 'bad-query' })
      return { type: 'error', code: 'bad-query', message: (err as Error).message }
    }
    const limit = typeof frame.limit === 'number' && Number.isInteger(frame.limit) && frame.limit > 0 ? Math.min(frame.limit, MAX_ANSWER_ENTRIES) : MAX_ANSWER_ENTRIES
    const records: string[] = []
    for (const { record, bytes } of this.components.listings()) {
      if (!record.listed || record.expiresAt <= Date.now()) continue
      if (!matches(qw, record.name, record.displayName)) continue
      records.push(Buffer.from(bytes).toString('base64'))
      if (records.length >= limit) break
    }
    this.queries?.inc({ result: 'ok' })
    return { type: 'results', records }
  }

  /** Searches the network (and this node) for listed logins matching every word of `query`. */
  async search (query: string, options: { signal?: AbortSignal } = {}): Promise<SearchResult[]> {
    const qw = queryWords(query)
    const max = this.init.maxResults ?? 50
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.init.timeoutMs ?? 5000), ...(options.signal != null ? [options.signal] : [])])
    const results = new Map<string, SearchResult>()
    const self = this.components.p2p.peerId
    for (const { record } of this.components.listings()) {
      if (record.listed && matches(qw, record.name, record.displayName)) add(results, record)
    }
    const longest = qw.reduce((a, b) => ([...b].length > [...a].length ? b : a))
    const token = [...longest].slice(0, MAX_TOKEN_LENGTH).join('')
    const providers = (await this.components.p2p.findProviders(tokenBytes(token), { signal, limit: this.init.maxProviders ?? 10 })).filter(p => p !== self)
    await runLimited(providers, 5, async (peer) => {
      try {
        const answer = await this.components.p2p.request(peer, DIR_PROTOCOL, { type: 'search', query: qw.join(' '), limit: MAX_ANSWER_ENTRIES }, { signal })
        if (answer.type !== 'results' || !Array.isArray(answer.records)) return
        for (const item of answer.records.slice(0, MAX_ANSWER_ENTRIES)) {
          const record = verifyListing(item, peer)
          if (record != null && matches(qw, record.name, record.displayName)) add(results, record)
        }
      } catch (err) {
        this.components.logger?.debug({ peer, err: (err as Error).message }, 'search peer failed')
      }
    })
    return [...results.values()].sort((a, b) => a.login.localeCompare(b.login)).slice(0, max)
  }

  /** Token bucket per peer. */
  private allow (peer: string): boolean {
    const burst = this.init.rateBurst ?? 10
    const rate = this.init.ratePerSecond ?? 1
    const now = Date.now()
    let b = this.buckets.get(peer)
    if (b == null) {
      if (this.buckets.size > 10_000) this.buckets.clear()
      b = { tokens: burst, at: now }
      this.buckets.set(peer, b)
    }
    b.tokens = Math.min(burst, b.tokens + (now - b.at) / 1000 * rate)
    b.at = now
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/** A login record from a search answer: valid, listed, and signed by the node that answered. */
function verifyListing (item: unknown, peer: string): LoginRecord | undefined {
  if (typeof item !== 'string' || item.length > 8192) return undefined
  const bytes = new Uint8Array(Buffer.from(item, 'base64'))
  let parsed: unknown
  try { parsed = JSON.parse(Buffer.from(bytes).toString('utf8')) } catch { return undefined }
  const name = (parsed as { name?: unknown } | null)?.name
  if (typeof name !== 'string') return undefined
  try {
    const record = decodeRecord(recordKey('login', name), bytes)
    if (record.kind !== 'login' || !record.listed || record.peerId !== peer) return undefined
    return record
  } catch (err) {
    if (err instanceof RecordRejectedError) return undefined
    throw err
  }
}

function add (results: Map<string, SearchResult>, r: LoginRecord): void {
  if (!results.has(r.name)) results.set(r.name, { login: r.name, displayName: r.displayName, node: r.node, peerId: r.peerId })
}

/** Runs `fn` over items with at most `limit` at once. */
export async function runLimited<T> (items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!
      await fn(item)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
