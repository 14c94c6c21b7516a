package netsim

import (
	"net/netip"
	"strconv"
	"strings"
)

// RewriteCandidates returns sdp with every ICE candidate (a=candidate:
// line, UDP or TCP) whose connection address and port are from pointed at
// to instead. Everything else, related addresses (raddr/rport) and c=
// lines included, is left byte for byte, line ends too.
//
// A gateway whose ICE UDP and TCP ports have the same number needs
// RewriteTransportCandidates to send each to its own relay.
func RewriteCandidates(sdp string, from, to netip.AddrPort) string {
	return RewriteTransportCandidates(sdp, "", from, to)
}

// RewriteTransportCandidates is RewriteCandidates for the candidates of
// one transport only ("udp" or "tcp", any case); "" means any.
func RewriteTransportCandidates(sdp, transport string, from, to netip.AddrPort) string {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	addr, port := to.Addr().Unmap().String(), strconv.Itoa(int(to.Port()))
	var b strings.Builder
	b.Grow(len(sdp))
	for rest := sdp; rest != ""; {
		n := strings.IndexByte(rest, '\n') + 1 // the line with its end
		if n == 0 {
			n = len(rest)
		}
		b.WriteString(rewriteCandidate(rest[:n], transport, from, addr, port))
		rest = rest[n:]
	}
	return b.String()
}

// rewriteCandidate rewrites one line (with its line end) if it is a
// matching candidate:
//
//	a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
func rewriteCandidate(line, transport string, from netip.AddrPort, addr, port string) string {
	if !strings.HasPrefix(line, "a=candidate:") {
		return line
	}
	f := fields(line, 6)
	if len(f) < 6 {
		return line
	}
	if transport != "" && !strings.EqualFold(line[f[2][0]:f[2][1]], transport) {
		return line
	}
	a, err := netip.ParseAddr(line[f[4][0]:f[4][1]])
	if err != nil {
		return line // an mDNS name, say: nothing to compare
	}
	p, err := strconv.ParseUint(line[f[5][0]:f[5][1]], 10, 16)
	if err != nil || netip.AddrPortFrom(a.Unmap(), uint16(p)) != from {
		return line
	}
	return line[:f[4][0]] + addr + " " + port + line[f[5][1]:]
}

// StripCandidates returns sdp without its ICE candidates: every
// a=candidate: line and every a=end-of-candidates line is removed with
// its line end; the other lines are left byte for byte, line ends too.
//
// Stripped from a player's offer, it leaves the gateway no address to
// check but the one the player's connectivity checks come from, the
// relay's (learnt as peer-reflexive), so no direct path on loopback can
// bypass the emulated network.
func StripCandidates(sdp string) string {
	var b strings.Builder
	b.Grow(len(sdp))
	for rest := sdp; rest != ""; {
		n := strings.IndexByte(rest, '\n') + 1 // the line with its end
		if n == 0 {
			n = len(rest)
		}
		line := rest[:n]
		rest = rest[n:]
		if strings.HasPrefix(line, "a=candidate:") || strings.TrimRight(line, "\r\n") == "a=end-of-candidates" {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// fields returns the [start, end) offsets of the first n space-separated
// fields of line, stopping at the line end.
func fields(line string, n int) [][2]int {
	var out [][2]int
	i := 0
	for len(out) < n {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		start := i
		for i < len(line) && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\n' {
			i++
		}
		if i == start {
			break
		}
		out = append(out, [2]int{start, i})
	}
	return out
}
