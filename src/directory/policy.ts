import type { Logger, Metrics, MetricCounter } from '../core/index.js'
import type { RecordPolicy, ValidationContext } from '../p2p/index.js'
import { RecordRejectedError } from './errors.js'
import { checkOwnership, decodeRecord, selectRecord, type DirectoryRecord } from './records.js'

export interface RecordValidatorComponents {
  /** the value this node holds for a key in its DHT datastore (for first-come ownership) */
  localRecord: (key: Uint8Array) => Promise<Uint8Array | undefined>
  metrics?: Metrics
  logger?: Logger
}

/**
 * The `m1` validator and selector given to kad-dht: every record a peer PUTs or a query returns is decoded and
 * checked (records.ts); a PUT is also held to first-come ownership against the record this node stores.
 */
export class RecordValidator implements RecordPolicy {
  private readonly rejected?: MetricCounter

  constructor (private readonly components: RecordValidatorComponents) {
    this.rejected = components.metrics?.counter('m1node_directory_records_rejected_total', 'Directory records refused, by reason', ['reason'])
  }

  async validate (key: Uint8Array, value: Uint8Array, context: ValidationContext = {}): Promise<void> {
    try {
      const offered = decodeRecord(key, value)
      if (context.from != null) {
        const heldBytes = await this.components.localRecord(key)
        let held: DirectoryRecord | undefined
        if (heldBytes != null) {
          try { held = decodeRecord(key, heldBytes) } catch { held = undefined }
        }
        checkOwnership(held, heldBytes, offered, value)
      }
    } catch (err) {
      const reason = err instanceof RecordRejectedError ? err.reason : 'malformed'
      this.rejected?.inc({ reason })
      this.components.logger?.debug({ peer: context.from, reason, err: (err as Error).message }, 'record refused')
      throw err
    }
  }

  select (key: Uint8Array, values: Uint8Array[]): number {
    const valid: Array<{ record: DirectoryRecord, index: number }> = []
    values.forEach((v, index) => {
      try { valid.push({ record: decodeRecord(key, v), index }) } catch {}
    })
    const i = selectRecord(valid)
    return i < 0 ? 0 : valid[i]!.index
  }
}
