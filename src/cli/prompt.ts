import { InvalidInputError } from '../core/index.js'

/**
 * Reads a password without echo on a terminal (asked twice when `confirm`), or the first line of stdin when it is
 * piped, so scripts can do `echo "$PW" | m1node user add alice`.
 */
export async function readPassword (prompt: string, confirm: boolean): Promise<string> {
  const stdin = process.stdin
  if (stdin.isTTY !== true) {
    const chunks: Buffer[] = []
    for await (const chunk of stdin) chunks.push(chunk as Buffer)
    const line = Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? ''
    if (line === '') throw new InvalidInputError('password', 'none given (use --password or type it at the prompt)')
    return line
  }
  const first = await hidden(prompt)
  if (confirm) {
    const second = await hidden('again: ')
    if (first !== second) throw new InvalidInputError('password', 'the two entries differ')
  }
  if (first === '') throw new InvalidInputError('password', 'empty')
  return first
}

async function hidden (prompt: string): Promise<string> {
  const stdin = process.stdin
  process.stderr.write(prompt)
  stdin.setRawMode(true)
  stdin.resume()
  return await new Promise((resolve, reject) => {
    let value = ''
    const onData = (buf: Buffer): void => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') { done(); resolve(value); return }
        if (ch === '\u0003') { done(); reject(new InvalidInputError('password', 'cancelled')); return }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1)
        else value += ch
      }
    }
    const done = (): void => {
      stdin.off('data', onData)
      stdin.setRawMode(false)
      stdin.pause()
      process.stderr.write('\n')
    }
    stdin.on('data', onData)
  })
}
