package whep

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// maxSDP bounds an offer or a trickle fragment.
const maxSDP = 64 << 10

// offerInfo is what the gateway needs from a viewer's offer.
type offerInfo struct {
	video map[string]bool // codec names the player can receive, upper case
	audio map[string]bool
	ufrag string
}

// parseOffer checks an offer and lists the codecs it accepts. It runs
// before anything is allocated for the session, so that a hostile body
// costs a parse and nothing else.
func parseOffer(body []byte) (offerInfo, error) {
	info := offerInfo{video: map[string]bool{}, audio: map[string]bool{}}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(string(body)); err != nil {
		return info, fmt.Errorf("offer is not valid SDP: %w", err)
	}
	if v, ok := sd.Attribute("ice-ufrag"); ok {
		info.ufrag = v
	}
	for _, m := range sd.MediaDescriptions {
		kind := m.MediaName.Media
		if kind != "video" && kind != "audio" {
			continue
		}
		if m.MediaName.Port.Value == 0 {
			continue // rejected m-line
		}
		if _, ok := m.Attribute("sendonly"); ok {
			continue // the player wants to send, not receive
		}
		if _, ok := m.Attribute("inactive"); ok {
			continue
		}
		if info.ufrag == "" {
			if v, ok := m.Attribute("ice-ufrag"); ok {
				info.ufrag = v
			}
		}
		for _, a := range m.Attributes {
			if a.Key != "rtpmap" {
				continue
			}
			// rtpmap:<pt> <name>/<rate>[/<channels>]
			_, rest, ok := strings.Cut(a.Value, " ")
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(rest, "/")
			name = strings.ToUpper(strings.TrimSpace(name))
			if kind == "video" {
				info.video[name] = true
			} else {
				info.audio[name] = true
			}
		}
	}
	if len(info.video) == 0 {
		return info, errors.New("offer has no video m-line the gateway can send on (recvonly or sendrecv)")
	}
	return info, nil
}

// parseFrag reads a trickle-ice-sdpfrag body (RFC 8840): its ICE user
// fragment and candidates.
func parseFrag(body string) (ufrag string, cands []webrtc.ICECandidateInit, err error) {
	mid := ""
	var mline uint16
	seenM := false
	for line := range strings.Lines(body) {
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "m="):
			if seenM {
				mline++
			}
			seenM = true
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=candidate:"):
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			m, idx := mid, mline
			c.SDPMid, c.SDPMLineIndex = &m, &idx
			cands = append(cands, c)
		case strings.HasPrefix(line, "a="):
			// ice-pwd, ice-options, end-of-candidates, group…: nothing to do
		default:
			return "", nil, fmt.Errorf("line %q is not an SDP fragment line", truncate(line, 60))
		}
	}
	return ufrag, cands, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
