package netsim

import (
	"net/netip"
	"strings"
	"testing"
)

// answerSDP is an answer as the gateway's pion writes it: host candidates
// on the shared UDP port and the ICE-TCP port (here the same number, as
// the example configuration has it), in both media sections, plus a
// candidate on another address and a server-reflexive one whose related
// address is the gateway's, neither of which may change.
var answerSDP = crlf(`v=0
o=- 7423196151582311386 1754550000 IN IP4 0.0.0.0
s=-
t=0 0
a=msid-semantic:WMS*
a=fingerprint:sha-256 3A:0B:6E:4C:91:FD:22:5E:71:AB:0C:33:9E:10:57:C8:2D:66:B4:F1:08:CA:5D:E7:93:41:7F:2A:B0:1C:6D:E5
a=extmap-allow-mixed
a=group:BUNDLE 0 1
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 127.0.0.1
a=setup:active
a=mid:0
a=ice-ufrag:QtBjnhXyNYmqUzLs
a=ice-pwd:xKZbSeJbnrvMWsaFZlDKbGnfpqSCiHVw
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:96 H264/90000
a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f
a=rtcp-fb:96 goog-remb 
a=rtcp-fb:96 ccm fir
a=rtcp-fb:96 nack 
a=rtcp-fb:96 nack pli
a=rtcp-fb:96 transport-cc 
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=ssrc:2771440915 cname:shelterwatch
a=ssrc:2771440915 msid:shelterwatch hall-video
a=msid:shelterwatch hall-video
a=sendonly
a=candidate:1966762133 1 udp 2130706431 127.0.0.1 8189 typ host
a=candidate:1966762133 2 udp 2130706431 127.0.0.1 8189 typ host
a=candidate:3431212410 1 tcp 1671430143 127.0.0.1 8189 typ host tcptype passive
a=candidate:3431212410 2 tcp 1671430143 127.0.0.1 8189 typ host tcptype passive
a=candidate:2837430214 1 udp 2130706431 192.168.7.20 8189 typ host
a=candidate:842163049 1 udp 1694498815 203.0.113.7 8189 typ srflx raddr 127.0.0.1 rport 8189
a=end-of-candidates
m=audio 9 UDP/TLS/RTP/SAVPF 0
c=IN IP4 127.0.0.1
a=setup:active
a=mid:1
a=ice-ufrag:QtBjnhXyNYmqUzLs
a=ice-pwd:xKZbSeJbnrvMWsaFZlDKbGnfpqSCiHVw
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:0 PCMU/8000
a=ssrc:1393006547 cname:shelterwatch
a=ssrc:1393006547 msid:shelterwatch hall-audio
a=msid:shelterwatch hall-audio
a=sendonly
a=candidate:1966762133 1 udp 2130706431 127.0.0.1 8189 typ host
a=candidate:3431212410 1 tcp 1671430143 127.0.0.1 8189 typ host tcptype passive
a=end-of-candidates
`)

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

func TestRewriteCandidates(t *testing.T) {
	gw := netip.MustParseAddrPort("127.0.0.1:8189")
	udpRelay, tcpRelay := netip.MustParseAddrPort("127.0.0.1:40001"), netip.MustParseAddrPort("127.0.0.1:40002")
	udpHost := " udp 2130706431 127.0.0.1 8189 typ host\r\n"
	tcpHost := " tcp 1671430143 127.0.0.1 8189 typ host tcptype passive\r\n"
	replace := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.ReplaceAll(s, old, new)
	}

	// Both transports: every candidate on the gateway's address.
	got := RewriteCandidates(answerSDP, gw, udpRelay)
	want := replace(answerSDP, udpHost, " udp 2130706431 127.0.0.1 40001 typ host\r\n")
	want = replace(want, tcpHost, " tcp 1671430143 127.0.0.1 40001 typ host tcptype passive\r\n")
	if got != want {
		t.Fatalf("RewriteCandidates:\n%s\nwant:\n%s", got, want)
	}
	if !strings.Contains(got, "203.0.113.7 8189 typ srflx raddr 127.0.0.1 rport 8189\r\n") ||
		!strings.Contains(got, "192.168.7.20 8189 typ host\r\n") || strings.Count(got, "\r\n") != strings.Count(answerSDP, "\r\n") {
		t.Fatal("other candidates or line ends changed")
	}

	// One relay per transport, the relay's address IPv4-mapped as a
	// net.UDPAddr may give it.
	got = RewriteTransportCandidates(answerSDP, "udp", gw, netip.MustParseAddrPort("[::ffff:127.0.0.1]:40001"))
	got = RewriteTransportCandidates(got, "TCP", gw, tcpRelay)
	want = replace(answerSDP, udpHost, " udp 2130706431 127.0.0.1 40001 typ host\r\n")
	want = replace(want, tcpHost, " tcp 1671430143 127.0.0.1 40002 typ host tcptype passive\r\n")
	if got != want {
		t.Fatalf("RewriteTransportCandidates:\n%s\nwant:\n%s", got, want)
	}

	// Nothing on from: the same string.
	if got := RewriteCandidates(answerSDP, netip.MustParseAddrPort("127.0.0.1:9"), udpRelay); got != answerSDP {
		t.Fatal("SDP changed without a matching candidate")
	}
}

func TestRewriteCandidatesOddInput(t *testing.T) {
	from, to := netip.MustParseAddrPort("[::1]:5000"), netip.MustParseAddrPort("127.0.0.1:6000")
	for _, c := range []struct{ in, want string }{
		{"", ""},
		// LF line ends and no final line end.
		{"a=candidate:1 1 udp 1 ::1 5000 typ host\na=candidate:1 1 udp 1 ::1 5000 typ host",
			"a=candidate:1 1 udp 1 127.0.0.1 6000 typ host\na=candidate:1 1 udp 1 127.0.0.1 6000 typ host"},
		// mDNS names, short lines, other attributes: untouched.
		{"a=candidate:1 1 udp 1 f3a1.local 5000 typ host\r\n", "a=candidate:1 1 udp 1 f3a1.local 5000 typ host\r\n"},
		{"a=candidate:1 1 udp\r\n", "a=candidate:1 1 udp\r\n"},
		{"a=remote-candidates:1 ::1 5000\r\n", "a=remote-candidates:1 ::1 5000\r\n"},
	} {
		if got := RewriteCandidates(c.in, from, to); got != c.want {
			t.Errorf("RewriteCandidates(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStripCandidates(t *testing.T) {
	var want strings.Builder
	for _, line := range strings.SplitAfter(answerSDP, "\r\n") {
		if !strings.HasPrefix(line, "a=candidate:") && line != "a=end-of-candidates\r\n" {
			want.WriteString(line)
		}
	}
	if got := StripCandidates(answerSDP); got != want.String() || strings.Contains(got, "candidate") || !strings.Contains(got, "a=mid:1\r\n") {
		t.Fatalf("stripped:\n%s", got)
	}
	for _, c := range []struct{ in, want string }{
		// Bare LF, and a last line without its end.
		{"v=0\na=candidate:1 1 udp 1 10.0.0.1 5000 typ host\na=end-of-candidates\nm=video 9\na=mid:0", "v=0\nm=video 9\na=mid:0"},
		{"v=0\r\na=candidate:1 1 udp 1 10.0.0.1 5000 typ host", "v=0\r\n"},
		{"a=end-of-candidates\r\nv=0\r\n", "v=0\r\n"},
		// Only whole attributes: these stay.
		{"a=candidates-x\r\na=end-of-candidates-x\r\nx=a=candidate:1\r\n", "a=candidates-x\r\na=end-of-candidates-x\r\nx=a=candidate:1\r\n"},
		{"", ""},
	} {
		if got := StripCandidates(c.in); got != c.want {
			t.Errorf("StripCandidates(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
