import { describe, expect, it } from 'vitest'
import { InvalidSdpError } from '../../../src/media/errors.js'
import { MAX_MEDIA, mediaEndpoints, nextVersion, parseSdp, rewriteSdp, serializeSdp } from '../../../src/media/sdp.js'

const crlf = (lines: string[]): string => lines.join('\r\n') + '\r\n'

const phone = crlf([
  'v=0',
  'o=- 3902914718 3902914718 IN IP4 192.168.1.34',
  's=m1',
  'c=IN IP4 192.168.1.34',
  't=0 0',
  'm=audio 40000 RTP/AVP 0 8 9 111 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:9 G722/8000',
  'a=rtpmap:111 opus/48000/2',
  'a=fmtp:111 useinbandfec=1',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-16',
  'a=ptime:20',
  'a=sendrecv'
])

const RELAY = '198.51.100.7'

describe('parseSdp', () => {
  it('reads session c=, origin and one m-line; serializes back byte for byte', () => {
    const sdp = parseSdp(phone)
    expect(sdp.origin).toMatchObject({ username: '-', sessionId: '3902914718', version: '3902914718', address: '192.168.1.34' })
    expect(sdp.connection).toEqual({ netType: 'IN', addrType: 'IP4', address: '192.168.1.34' })
    expect(sdp.media).toHaveLength(1)
    expect(sdp.media[0]).toMatchObject({ type: 'audio', port: 40000, proto: 'RTP/AVP', rtcpMux: false, direction: 'sendrecv' })
    expect(serializeSdp(sdp)).toBe(phone)
  })

  it('accepts LF line ends and writes CRLF', () => {
    const lf = phone.replaceAll('\r\n', '\n')
    expect(serializeSdp(parseSdp(lf))).toBe(phone)
  })

  it('ignores blank lines and a missing final line end', () => {
    const sdp = parseSdp('v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0')
    expect(sdp.media[0]?.port).toBe(5000)
  })

  it('refuses bodies that are not SDP', () => {
    expect(() => parseSdp('')).toThrow(InvalidSdpError)
    expect(() => parseSdp('hello\r\n')).toThrow(InvalidSdpError)
    expect(() => parseSdp('v=0\r\nm=audio x RTP/AVP 0\r\n')).toThrow(InvalidSdpError)
    expect(() => parseSdp('v=0\r\nm=audio 70000 RTP/AVP 0\r\n')).toThrow(InvalidSdpError)
    expect(() => parseSdp('v=0\r\nm=audio\r\n')).toThrow(InvalidSdpError)
    expect(() => parseSdp('v=0\r\nm=audio 5000 RTP/AVP 0\r\na=rtcp:abc\r\n')).toThrow(InvalidSdpError)
    expect(() => parseSdp('v=0\r\n' + 'm=audio 5000 RTP/AVP 0\r\n'.repeat(MAX_MEDIA + 1))).toThrow(/too many/)
    expect(() => parseSdp('v=0\r\n' + 'a=x\r\n'.repeat(20000))).toThrow(/too large/)
  })

  it('never throws anything but InvalidSdpError on garbage', () => {
    const samples = ['v=0\r\nc=\r\nm=audio 1 RTP/AVP\r\n', 'v=0\r\no=\r\nc=IN\r\n', 'v=0\r\nm=a 1 b\r\na=rtcp:\r\na=rtcp-mux\r\nc=IN IP4\r\n', '\u0000v=0']
    for (const s of samples) {
      try { parseSdp(s) } catch (err) { expect(err).toBeInstanceOf(InvalidSdpError) }
    }
  })
})

describe('mediaEndpoints', () => {
  it('session c= applies to every m-line; media c= overrides it', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0',
      'm=audio 5000 RTP/AVP 0', 'm=video 5002 RTP/AVP 96', 'c=IN IP4 10.0.0.2']))
    const [audio, video] = mediaEndpoints(sdp)
    expect(audio).toMatchObject({ relayed: true, address: '10.0.0.1', port: 5000, rtcpPort: 5001, rtcpAddress: '10.0.0.1' })
    expect(video).toMatchObject({ relayed: true, address: '10.0.0.2', port: 5002, rtcpPort: 5003 })
  })

  it('reads a=rtcp with and without an address, and rtcp-mux', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0',
      'm=audio 5000 RTP/AVP 0', 'a=rtcp:6000',
      'm=audio 5010 RTP/AVP 0', 'a=rtcp:6010 IN IP4 10.0.0.9',
      'm=audio 5020 RTP/AVP 0', 'a=rtcp:5020', 'a=rtcp-mux']))
    const [one, two, three] = mediaEndpoints(sdp)
    expect(one).toMatchObject({ rtcpPort: 6000, rtcpAddress: '10.0.0.1', rtcpMux: false })
    expect(two).toMatchObject({ rtcpPort: 6010, rtcpAddress: '10.0.0.9' })
    expect(three).toMatchObject({ rtcpPort: 5020, rtcpAddress: '10.0.0.1', rtcpMux: true })
  })

  it('hold, port 0, IPv6, DTLS and host names', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'a=sendonly',
      'm=audio 5000 RTP/AVP 0',
      'm=video 0 RTP/AVP 96',
      'm=audio 5004 RTP/AVP 0', 'c=IN IP6 2001:db8::1',
      'm=audio 5006 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 10.0.0.1',
      'm=audio 5008 RTP/AVP 0', 'c=IN IP4 pbx.example.com', 'a=inactive']))
    const e = mediaEndpoints(sdp)
    expect(e[0]).toMatchObject({ relayed: true, hold: true, direction: 'sendonly' })
    expect(e[0]?.address).toBeUndefined()
    expect(e[1]).toMatchObject({ relayed: false, reason: 'port-0' })
    expect(e[2]).toMatchObject({ relayed: false, reason: 'ipv6' })
    expect(e[3]).toMatchObject({ relayed: false, reason: 'proto' })
    expect(e[4]).toMatchObject({ relayed: true, hold: false, direction: 'inactive' })
    expect(e[4]?.address).toBeUndefined()
  })
})

describe('rewriteSdp', () => {
  it('points c=, m= at the relay and keeps every other line', () => {
    const out = rewriteSdp(parseSdp(phone), { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }] })
    expect(out).toBe(phone.replace('c=IN IP4 192.168.1.34', `c=IN IP4 ${RELAY}`).replace('m=audio 40000', 'm=audio 20000'))
    expect(out.endsWith('\r\n')).toBe(true)
    // a rewritten body reads back the relay's endpoints
    expect(mediaEndpoints(parseSdp(out))[0]).toMatchObject({ address: RELAY, port: 20000, rtcpPort: 20001 })
  })

  it('rewrites a=rtcp (port and address) and keeps rtcp-mux on the RTP port', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0',
      'm=audio 5000 RTP/AVP 0', 'a=rtcp:6000 IN IP4 10.0.0.9',
      'm=audio 5020 RTP/AVP 0', 'a=rtcp:5020', 'a=rtcp-mux']))
    const out = rewriteSdp(sdp, { address: RELAY, ports: [{ rtp: 30000, rtcp: 30001 }, { rtp: 30010, rtcp: 30011 }] })
    expect(out).toContain(`m=audio 30000 RTP/AVP 0\r\na=rtcp:30001 IN IP4 ${RELAY}\r\n`)
    expect(out).toContain('m=audio 30010 RTP/AVP 0\r\na=rtcp:30010\r\na=rtcp-mux\r\n')
  })

  it('rewrites media-level c= and leaves a session without c= alone', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 't=0 0',
      'm=audio 5000 RTP/AVP 0', 'i=voice', 'c=IN IP4 10.0.0.1', 'm=video 5002 RTP/AVP 96', 'c=IN IP4 10.0.0.2']))
    const out = rewriteSdp(sdp, { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }, { rtp: 20002, rtcp: 20003 }] })
    expect(out).toBe(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 't=0 0',
      'm=audio 20000 RTP/AVP 0', 'i=voice', `c=IN IP4 ${RELAY}`, 'm=video 20002 RTP/AVP 96', `c=IN IP4 ${RELAY}`]))
  })

  it('adds a media c= when the body had none at all', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 't=0 0', 'm=audio 5000 RTP/AVP 0', 'a=sendrecv']))
    const out = rewriteSdp(sdp, { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }] })
    expect(out).toContain(`m=audio 20000 RTP/AVP 0\r\nc=IN IP4 ${RELAY}\r\na=sendrecv`)
  })

  it('keeps hold (c=0.0.0.0) and directions, and leaves port-0 m-lines as they were', () => {
    const held = crlf(['v=0', 'o=- 1 2 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0',
      'm=audio 5000 RTP/AVP 0', 'a=sendonly', 'm=video 0 RTP/AVP 96'])
    const out = rewriteSdp(parseSdp(held), { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }] })
    expect(out).toBe(held.replace('m=audio 5000', 'm=audio 20000'))
    const mediaHold = crlf(['v=0', 'o=- 1 2 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0',
      'm=audio 5000 RTP/AVP 0', 'c=IN IP4 0.0.0.0', 'a=inactive'])
    const out2 = rewriteSdp(parseSdp(mediaHold), { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }] })
    expect(out2).toContain('m=audio 20000 RTP/AVP 0\r\nc=IN IP4 0.0.0.0\r\na=inactive')
    expect(out2).toContain(`c=IN IP4 ${RELAY}`) // the session-level one
  })

  it('drops ICE from relayed m-lines; leaves DTLS m-lines (and their ICE) unchanged with their own address', () => {
    const sdp = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'a=ice-lite', 'a=ice-options:trickle',
      'm=audio 5000 RTP/AVP 0', 'a=ice-ufrag:abcd', 'a=ice-pwd:0123456789abcdef012345', 'a=candidate:1 1 UDP 2130706431 10.0.0.1 5000 typ host', 'a=end-of-candidates', 'a=rtpmap:0 PCMU/8000',
      'm=audio 5002 UDP/TLS/RTP/SAVPF 111', 'a=ice-ufrag:efgh', 'a=candidate:1 1 UDP 2130706431 10.0.0.1 5002 typ host', 'a=fingerprint:sha-256 AA:BB']))
    const out = rewriteSdp(sdp, { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }, undefined] })
    expect(out).toBe(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', `c=IN IP4 ${RELAY}`, 't=0 0', 'a=ice-lite', 'a=ice-options:trickle',
      'm=audio 20000 RTP/AVP 0', 'a=rtpmap:0 PCMU/8000',
      'm=audio 5002 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 10.0.0.1', 'a=ice-ufrag:efgh', 'a=candidate:1 1 UDP 2130706431 10.0.0.1 5002 typ host', 'a=fingerprint:sha-256 AA:BB']))
    // with every m-line relayed the session-level ICE lines go too
    const plain = parseSdp(crlf(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', 'a=ice-ufrag:x', 'm=audio 5000 RTP/AVP 0']))
    expect(rewriteSdp(plain, { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }] })).not.toContain('ice-')
  })

  it('leaves IPv6 m-lines alone', () => {
    const v6 = crlf(['v=0', 'o=- 1 1 IN IP6 2001:db8::1', 's=-', 'c=IN IP6 2001:db8::1', 't=0 0', 'm=audio 5000 RTP/AVP 0'])
    expect(rewriteSdp(parseSdp(v6), { address: RELAY, ports: [undefined] })).toBe(v6)
    // an IPv4 m-line next to it is relayed; the IPv6 session c= stays for the other
    const mixed = crlf(['v=0', 'o=- 1 1 IN IP6 2001:db8::1', 's=-', 'c=IN IP6 2001:db8::1', 't=0 0', 'm=audio 5000 RTP/AVP 0', 'm=audio 5002 RTP/AVP 0', 'c=IN IP4 10.0.0.1'])
    const out = rewriteSdp(parseSdp(mixed), { address: RELAY, ports: [undefined, { rtp: 20000, rtcp: 20001 }] })
    expect(out).toBe(mixed.replace('m=audio 5002', 'm=audio 20000').replace('c=IN IP4 10.0.0.1', `c=IN IP4 ${RELAY}`))
  })

  it('writes the given origin (o= version)', () => {
    const sdp = parseSdp(phone)
    const out = rewriteSdp(sdp, { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }], origin: { ...sdp.origin!, version: nextVersion(sdp.origin!.version) } })
    expect(out).toContain('o=- 3902914718 3902914719 IN IP4 192.168.1.34\r\n')
    expect(nextVersion('18446744073709551615')).toBe('18446744073709551616')
    expect(nextVersion('x')).toBe('1')
  })

  it('round trip: parse(rewrite(x)) keeps codecs and attributes in order', () => {
    const two = crlf(['v=0', 'o=alice 2890844526 2890844526 IN IP4 10.47.16.5', 's=-', 'c=IN IP4 10.47.16.5', 't=0 0',
      'm=audio 49170 RTP/AVP 0 8 101', 'a=rtpmap:101 telephone-event/8000', 'a=rtcp:49171', 'a=ptime:20',
      'm=video 51372 RTP/AVPF 96', 'b=AS:512', 'a=rtpmap:96 H264/90000', 'a=rtcp-fb:96 nack', 'a=rtcp-mux'])
    const out = rewriteSdp(parseSdp(two), { address: RELAY, ports: [{ rtp: 20000, rtcp: 20001 }, { rtp: 20002, rtcp: 20003 }] })
    const back = parseSdp(out)
    expect(back.media.map(m => m.lines.slice(1))).toEqual([
      ['a=rtpmap:101 telephone-event/8000', 'a=rtcp:20001', 'a=ptime:20'],
      ['b=AS:512', 'a=rtpmap:96 H264/90000', 'a=rtcp-fb:96 nack', 'a=rtcp-mux']
    ])
    expect(mediaEndpoints(back).map(e => [e.port, e.rtcpPort, e.rtcpMux])).toEqual([[20000, 20001, false], [20002, 20002, true]])
  })
})
