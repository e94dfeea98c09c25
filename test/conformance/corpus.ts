// Shared by the RFC 4475 / RFC 5118 conformance tests: where the corpus is, and how a screening decision is judged
// against a manifest's `uas_outcomes`.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { expect } from 'vitest'
import { parseMessage, serialize, type Screening, type SipMessage } from '../../src/sip/message/index.js'

/** ../shared/conformance beside the repository. */
export const CORPUS = new URL('../../../shared/conformance/', import.meta.url)
export const haveCorpus = existsSync(new URL('rfc4475/manifest.json', CORPUS)) && existsSync(new URL('rfc5118/manifest.json', CORPUS))

export type Outcome = number | 'process' | 'forward' | 'drop' | 'close' | 'wait-then-close'

export interface ManifestEntry {
  name: string
  file: string
  wire_file?: string
  section: string
  expected: 'valid' | 'invalid'
  uas_outcomes: Outcome[]
  sha256: string
  wire_sha256?: string
}

export function readManifest (dir: string): { messages: ManifestEntry[], errata?: Array<ManifestEntry & { derived_from: string }> } {
  return JSON.parse(readFileSync(new URL(`${dir}/manifest.json`, CORPUS), 'utf8'))
}

export function readMessage (dir: string, file: string, sha256?: string): Buffer {
  const data = readFileSync(new URL(`${dir}/${file}`, CORPUS))
  if (sha256 !== undefined) expect(createHash('sha256').update(data).digest('hex'), `${file} is the manifest's`).toBe(sha256)
  return data
}

/**
 * Whether a decision of `screenMessage` is one of the outcomes the manifest accepts from a UAS, over UDP.
 * - `reject` sends its status: it must be listed.
 * - `drop` sends nothing: listed as "drop", or as "close" (on UDP closing a connection is discarding the datagram).
 * - `process` on a request hands it to routing, which answers it normally: listed as "process", or as a 2xx or 401
 *   (what a registrar or UAS answers once it processes it; e.g. RFC 4475 §3.3.7 lists 401/200).
 * - `process` on a response hands it to the transaction layer, which discards a stray response: "process" or "drop".
 */
export function acceptable (s: Screening, outcomes: readonly Outcome[]): boolean {
  switch (s.action) {
    case 'reject': return outcomes.includes(s.status)
    case 'drop': return outcomes.includes('drop') || outcomes.includes('close')
    case 'process':
      if (s.message.kind === 'response') return outcomes.includes('process') || outcomes.includes('drop')
      return outcomes.includes('process') || outcomes.some(o => typeof o === 'number' && ((o >= 200 && o < 300) || o === 401))
  }
}

/** parse(serialize(m)) has the same structure as m (Content-Length aside: serialize recomputes it). */
export function expectRoundTrip (m: SipMessage): void {
  const again = parseMessage(serialize(m))
  const strip = (x: SipMessage): unknown => ({ ...x, headers: x.headers.filter(h => h.name !== 'Content-Length') })
  expect(strip(again)).toEqual(strip(m))
  expect(again.body.equals(m.body)).toBe(true)
}

export function describeScreening (s: Screening): string {
  return s.action === 'process' ? 'process' : s.action === 'reject' ? `${s.status} (${s.reason})` : `drop (${s.reason})`
}
