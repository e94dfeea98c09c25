import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BARESIP_MODULES } from './baresip.js'

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
