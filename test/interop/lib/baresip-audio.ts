import { createSocket } from 'node:dgram'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'vitest'
import { BARESIP_MODULES } from './baresip.js'
import { freePort, has, watch, type Children, type Watched } from './tools.js'
import { decodeWav, encodeWav, rms, tone, zeroCrossingHz } from './wav.js'

/** The baresip modules writeBaresipAudioConfig loads. */
export const AUDIO_MODULES = ['account', 'menu', 'uuid', 'g711', 'aufile', 'sndfile', 'alsa', 'cons']

/** Whether baresip and every module of AUDIO_MODULES are installed. */
export function haveBaresipAudio (): boolean {
  return has('baresip') && AUDIO_MODULES.every(m => existsSync(`${BARESIP_MODULES}/${m}.so`))
}

export interface BaresipAudioConfig {
  /** baresip's own SIP port on 127.0.0.1 */
  sipPort: number
  /** lines of the `accounts` file */
  accounts: string[]
  /** WAV file (8 kHz, 16-bit mono) the `aufile` source plays as the microphone */
  sourceWav: string
  /** folder where the `sndfile` filter writes what was sent (…-enc.wav) and received (…-dec.wav) */
  recordDir: string
  /** RTP ports baresip may use, [min, max] */
  rtpPorts: [number, number]
  /** UDP port of the `cons` console on 127.0.0.1, which takes the same commands as the keyboard */
  consPort: number
}

/**
 * Writes a headless baresip 1.0 configuration for calls into `dir` (for `baresip -f dir`): SIP on 127.0.0.1, G.711
 * only, the `aufile` module as microphone, the `sndfile` filter recording both directions to WAV, ALSA's `null`
 * device as speaker (the receive path runs without a sound card), no STUN/TURN/ICE, DNS pointed at loopback, and the
 * `cons` console on a UDP port to give it commands (/dial, /hangup) while it runs.
 */
export async function writeBaresipAudioConfig (dir: string, c: BaresipAudioConfig): Promise<void> {
  await mkdir(c.recordDir, { recursive: true })
  const config = [
    'poll_method poll',
    `sip_listen 127.0.0.1:${c.sipPort}`,
    'net_interface 127.0.0.1',
    'dns_server 127.0.0.1:53',
    'call_max_calls 1',
    `audio_source aufile,${c.sourceWav}`,
    'audio_player alsa,null',
    'audio_alert alsa,null',
    'ausrc_srate 8000',
    'auplay_srate 8000',
    'ausrc_channels 1',
    'auplay_channels 1',
    `rtp_ports ${c.rtpPorts[0]}-${c.rtpPorts[1]}`,
    'rtcp_mux no',
    'jitter_buffer_delay 1-10',
    `module_path ${BARESIP_MODULES}`,
    'module g711.so',
    'module aufile.so',
    'module alsa.so',
    'module sndfile.so',
    'module cons.so',
    'module_tmp uuid.so',
    'module_tmp account.so',
    'module_app menu.so',
    `snd_path ${c.recordDir}`,
    `cons_listen 127.0.0.1:${c.consPort}`,
    ''
  ].join('\n')
  await writeFile(join(dir, 'config'), config)
  await writeFile(join(dir, 'accounts'), c.accounts.join('\n') + '\n')
  await writeFile(join(dir, 'contacts'), '')
}

/** A running baresip that plays a tone and records what it hears. */
export interface TonePhone {
  out: Watched
  /** the tone it plays, Hz */
  hz: number
  /** where sndfile writes the call's audio */
  recordDir: string
  /** sends a command line to baresip's console (`/dial uri`, `/hangup`) */
  command: (line: string) => Promise<void>
}

export interface TonePhoneInit {
  /** its configuration folder (created) */
  dir: string
  /** account `login@domain`, password `pw-<login>` */
  login: string
  domain: string
  /** the node's SIP UDP port on 127.0.0.1 (the outbound proxy) */
  proxyPort: number
  /** the tone it plays */
  hz: number
  /** answers incoming calls at once */
  autoAnswer: boolean
  /** first of the 8 RTP ports it may use (baresip binds them only when a call starts) */
  rtp: number
}

/** Starts baresip (G.711, console on UDP) as `login@domain` through the node at `proxyPort`, playing a tone. */
export async function startTonePhone (children: Children, o: TonePhoneInit): Promise<TonePhone> {
  await mkdir(o.dir, { recursive: true })
  const wav = join(o.dir, `tone-${o.hz}.wav`)
  // longer than the call: aufile stops the source at the end of its file
  await writeFile(wav, encodeWav(tone(o.hz, 10)))
  const recordDir = join(o.dir, 'rec')
  const sipPort = await freePort()
  let consPort = await freePort()
  while (consPort === sipPort) consPort = await freePort()
  await writeBaresipAudioConfig(o.dir, {
    sipPort,
    accounts: [`<sip:${o.login}@${o.domain};transport=udp>;auth_pass=pw-${o.login};outbound="sip:127.0.0.1:${o.proxyPort}";audio_codecs=PCMA,PCMU${o.autoAnswer ? ';answermode=auto' : ''}`],
    sourceWav: wav,
    recordDir,
    rtpPorts: [o.rtp, o.rtp + 7],
    consPort
  })
  const out = watch(children.spawn('baresip', ['-f', o.dir], { cwd: o.dir }))
  const command = async (line: string): Promise<void> => {
    const sock = createSocket('udp4')
    try {
      await new Promise<void>((resolve, reject) => { sock.send(`${line}\n`, consPort, '127.0.0.1', (err) => { if (err != null) reject(err); else resolve() }) })
    } finally {
      sock.close()
    }
  }
  return { out, hz: o.hz, recordDir, command }
}

/** baresip's output without the status line it redraws during a call. */
export function withoutStatusLines (out: string): string {
  return out.replace(/\[\d+:\d\d:\d\d\] audio=\S+ \(bit\/s\)\s*/g, '')
}

/** The recording sndfile made of what a phone received (its decoder output): level, frequency, length. */
export async function heard (recordDir: string): Promise<{ rms: number, hz: number, seconds: number }> {
  const file = (await readdir(recordDir)).find(f => f.endsWith('-dec.wav'))
  expect(file, `no -dec.wav in ${recordDir}`).toBeDefined()
  const pcm = decodeWav(await readFile(join(recordDir, file!)))
  return { rms: rms(pcm.samples), hz: zeroCrossingHz(pcm), seconds: pcm.samples.length / pcm.sampleRate }
}

/**
 * Each phone decoded the other's tone for more than 1.5 s, not silence (sndfile fixes the WAV header as the call
 * closes; decodeWav reads what is there either way).
 */
export async function expectHeardEachOther (caller: TonePhone, callee: TonePhone): Promise<void> {
  const calleeHeard = await heard(callee.recordDir)
  const callerHeard = await heard(caller.recordDir)
  expect(calleeHeard.seconds).toBeGreaterThan(1.5)
  expect(callerHeard.seconds).toBeGreaterThan(1.5)
  // a full-scale-half sine has an RMS of 0.35; silence ~0
  expect(calleeHeard.rms, JSON.stringify(calleeHeard)).toBeGreaterThan(0.2)
  expect(callerHeard.rms, JSON.stringify(callerHeard)).toBeGreaterThan(0.2)
  // zero crossings: within 30 Hz, or 5 % above 600 Hz
  expect(Math.abs(calleeHeard.hz - caller.hz), JSON.stringify(calleeHeard)).toBeLessThan(Math.max(30, caller.hz * 0.05))
  expect(Math.abs(callerHeard.hz - callee.hz), JSON.stringify(callerHeard)).toBeLessThan(Math.max(30, callee.hz * 0.05))
}
