/** Small message builders shared by the message tests. */
export function msg (lines: string[], body = ''): Buffer {
  return Buffer.from(lines.join('\r\n') + '\r\n\r\n' + body)
}

export const REGISTER = msg([
  'REGISTER sip:m1.example.net SIP/2.0',
  'Via: SIP/2.0/UDP 192.168.1.34:5060;branch=z9hG4bK-1;rport',
  'Max-Forwards: 70',
  'Contact: <sip:alice@192.168.1.34:5060;ob>;+sip.instance="<urn:uuid:4e0c8a2e>";reg-id=1;expires=600',
  'To: "Alice" <sip:alice@m1.example.net>',
  'From: "Alice" <sip:alice@m1.example.net>;tag=8e3f1a2b',
  'Call-ID: abc123@192.168.1.34',
  'CSeq: 2 REGISTER',
  'Expires: 600',
  'Authorization: Digest username="alice", realm="m1.example.net", nonce="bm9uY2U", uri="sip:m1.example.net", response="3b8d7c6f", qop=auth, nc=00000001, cnonce="6b8b"',
  'Content-Length: 0'
])

export const SDP = 'v=0\r\no=- 1 1 IN IP4 192.168.1.34\r\ns=-\r\nc=IN IP4 192.168.1.34\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n'

export const INVITE = msg([
  'INVITE sip:bob@m1.example.net SIP/2.0',
  'Via: SIP/2.0/UDP 192.168.1.34:5060;branch=z9hG4bK-2;rport',
  'Max-Forwards: 70',
  'Contact: <sip:alice@192.168.1.34:5060>',
  'To: <sip:bob@m1.example.net>',
  'From: "Alice" <sip:alice@m1.example.net>;tag=1c2d',
  'Call-ID: inv1@192.168.1.34',
  'CSeq: 1 INVITE',
  'Content-Type: application/sdp',
  `Content-Length: ${Buffer.byteLength(SDP)}`
], SDP)

export const RESPONSE = msg([
  'SIP/2.0 180 Ringing',
  'Via: SIP/2.0/UDP 192.168.1.34:5060;branch=z9hG4bK-2;rport=5060;received=203.0.113.7',
  'To: <sip:bob@m1.example.net>;tag=b0b',
  'From: "Alice" <sip:alice@m1.example.net>;tag=1c2d',
  'Call-ID: inv1@192.168.1.34',
  'CSeq: 1 INVITE',
  'Content-Length: 0'
])
