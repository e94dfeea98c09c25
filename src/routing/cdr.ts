import type { Table } from '../store/index.js'
import type { MediaPath } from './p2p-media.js'

/** One leg of a call as the record keeps it. */
export interface CdrLeg {
  side: 'a' | 'b'
  /** who: the caller's AOR or the contact rung */
  party: string
  transport: string
  /** ip:port, or the peer id of another m1 node (transport P2P) */
  remote: string
  /** the other m1 node this leg leads to */
  node?: string
}

/** A call detail record: one per call attempt, answered or not. */
export interface CallRecord {
  /** A-leg Call-ID */
  callId: string
  caller: string
  callee: string
  startedAt: number
  answeredAt?: number
  endedAt?: number
  /** answered -> ended, milliseconds; 0 when never answered */
  durationMs: number
  /** final status sent to the caller */
  status: number
  /** why it ended: caller-bye, callee-bye, cancelled, rejected, no-answer, media-timeout, media-lost, session-expired, ... */
  reason: string
  legs: CdrLeg[]
  media?: { packets: { a2b: number, b2a: number }, bytes: { a2b: number, b2a: number } }
  /**
   * What carried the media between the nodes at the end: `udp` (no other node), `stream-direct` or `stream-relayed`
   * (`/m1/rtp/1.0.0` on a direct or relayed libp2p connection), `datachannel` (ICE, direct UDP). Absent: no media.
   */
  mediaPath?: MediaPath
  /** every carrier the call's media used, in order, with the time of the change (epoch ms) */
  mediaPaths?: Array<{ at: number, path: MediaPath }>
}

export interface CallRecordsComponents { table: Table<CallRecord> }

/** Call detail records in LevelDB (sublevel `time_cdr`), keyed by start time so that `--since` is a range scan. */
export class CallRecords {
  constructor (private readonly components: CallRecordsComponents) {}

  static key (rec: Pick<CallRecord, 'startedAt' | 'callId'>): string {
    return `${String(rec.startedAt).padStart(13, '0')}!${rec.callId}`
  }

  async write (rec: CallRecord): Promise<void> {
    await this.components.table.put(CallRecords.key(rec), rec)
  }

  /** Records started at or after `since` (epoch ms), oldest first, at most `limit`. */
  async list (opts: { since?: number, limit?: number } = {}): Promise<CallRecord[]> {
    const out: CallRecord[] = []
    const gte = opts.since != null ? String(opts.since).padStart(13, '0') : undefined
    for await (const [, rec] of this.components.table.entries({ ...(gte != null ? { gte } : {}), limit: opts.limit ?? 1000 })) out.push(rec)
    return out
  }
}
