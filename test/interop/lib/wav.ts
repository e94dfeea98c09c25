/** PCM audio as the interop tests handle it: 16-bit signed samples, one channel. */
export interface Pcm {
  sampleRate: number
  samples: Int16Array
}

/** A RIFF/WAVE file of 16-bit little-endian mono PCM (the format baresip's aufile source requires). */
export function encodeWav (pcm: Pcm): Buffer {
  const data = pcm.samples.length * 2
  const b = Buffer.alloc(44 + data)
  b.write('RIFF', 0, 'ascii')
  b.writeUInt32LE(36 + data, 4)
  b.write('WAVE', 8, 'ascii')
  b.write('fmt ', 12, 'ascii')
  b.writeUInt32LE(16, 16) // fmt chunk size
  b.writeUInt16LE(1, 20) // PCM
  b.writeUInt16LE(1, 22) // mono
  b.writeUInt32LE(pcm.sampleRate, 24)
  b.writeUInt32LE(pcm.sampleRate * 2, 28) // byte rate
  b.writeUInt16LE(2, 32) // block align
  b.writeUInt16LE(16, 34) // bits per sample
  b.write('data', 36, 'ascii')
  b.writeUInt32LE(data, 40)
  for (let i = 0; i < pcm.samples.length; i++) b.writeInt16LE(pcm.samples[i]!, 44 + i * 2)
  return b
}

/** A sine tone: `seconds` of `hz` at `amplitude` (0..1 of full scale). */
export function tone (hz: number, seconds: number, sampleRate = 8000, amplitude = 0.5): Pcm {
  const samples = new Int16Array(Math.round(seconds * sampleRate))
  for (let i = 0; i < samples.length; i++) samples[i] = Math.round(Math.sin(2 * Math.PI * hz * i / sampleRate) * amplitude * 32767)
  return { sampleRate, samples }
}

/**
 * Reads a WAVE file of 16-bit PCM (the first channel when there are several), walking its chunks; throws on anything
 * else. libsndfile, as baresip's sndfile module writes it, may put other chunks before `data`.
 */
export function decodeWav (b: Buffer): Pcm {
  if (b.length < 12 || b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE') throw new Error('not a RIFF/WAVE file')
  let off = 12
  let channels = 0
  let sampleRate = 0
  let bits = 0
  while (off + 8 <= b.length) {
    const id = b.toString('ascii', off, off + 4)
    // a file still being written may say 0 or too much: read what is there
    const size = Math.min(b.readUInt32LE(off + 4), b.length - off - 8)
    const body = off + 8
    if (id === 'fmt ') {
      channels = b.readUInt16LE(body + 2)
      sampleRate = b.readUInt32LE(body + 4)
      bits = b.readUInt16LE(body + 14)
    } else if (id === 'data') {
      if (bits !== 16 || channels < 1) throw new Error(`unsupported WAVE format: ${bits} bits, ${channels} channels`)
      const frames = Math.floor(size / (2 * channels))
      const samples = new Int16Array(frames)
      for (let i = 0; i < frames; i++) samples[i] = b.readInt16LE(body + i * 2 * channels)
      return { sampleRate, samples }
    }
    off = body + size + (size % 2)
  }
  throw new Error('no data chunk')
}

/** Root mean square of the samples, 0..1 of full scale (a sine at amplitude A gives A/√2). */
export function rms (samples: Int16Array): number {
  if (samples.length === 0) return 0
  let sum = 0
  for (const s of samples) sum += (s / 32768) ** 2
  return Math.sqrt(sum / samples.length)
}

/** The main frequency of a tone, from its zero crossings (good enough for a clean sine). */
export function zeroCrossingHz (pcm: Pcm): number {
  let crossings = 0
  for (let i = 1; i < pcm.samples.length; i++) {
    if ((pcm.samples[i - 1]! < 0) !== (pcm.samples[i]! < 0)) crossings++
  }
  return pcm.samples.length > 0 ? crossings / 2 / (pcm.samples.length / pcm.sampleRate) : 0
}
