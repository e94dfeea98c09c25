import type { Flow } from '../../../src/sip/transport/types.js'

/** Collects received messages and lets a test wait for the n-th one. */
export class Inbox {
  readonly items: Array<{ data: string, flow: Flow }> = []
  private waiters: Array<() => void> = []

  readonly handler = (data: Buffer, flow: Flow): void => {
    this.items.push({ data: data.toString(), flow })
    for (const w of this.waiters.splice(0)) w()
  }

  async waitFor (count: number, timeoutMs = 2000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.items.length < count) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${count} messages (got ${this.items.length})`)
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left)
        this.waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }
}

/** Resolves when `check()` becomes true, polling; rejects after `timeoutMs`. */
export async function until (check: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise(resolve => setTimeout(resolve, 5))
  }
}

export function sipRequest (body = '', method = 'OPTIONS'): string {
  return `${method} sip:registrar.test SIP/2.0\r\n` +
    'Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKtest\r\n' +
    'From: <sip:a@registrar.test>;tag=1\r\nTo: <sip:a@registrar.test>\r\n' +
    'Call-ID: test@127.0.0.1\r\nCSeq: 1 ' + method + '\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` + body
}
