package whep

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// ICEServer is a STUN or TURN server offered to viewers (and used by the
// gateway's own side of each session unless ClientOnly).
type ICEServer struct {
	// URLs are stun:, turn: or turns: URLs.
	URLs []string
	// Username and Credential are static TURN credentials.
	Username, Credential string
	// Secret, instead of static credentials, makes time-limited TURN REST
	// credentials for every session (coturn's use-auth-secret): the user
	// name is "<expiry unix time>:<viewer>", the password the base64
	// HMAC-SHA1 of that name under Secret.
	Secret string
	// TTL is how long REST credentials stay valid (default 12h).
	TTL time.Duration
	// ClientOnly advertises the server to viewers without using it on the
	// gateway's side.
	ClientOnly bool
}

// restCredentials returns TURN REST credentials valid until now+ttl.
func restCredentials(secret, who string, now time.Time, ttl time.Duration) (user, pass string) {
	if ttl <= 0 {
		ttl = 12 * time.Hour
	}
	// A colon in the viewer's name would end the expiry field early.
	user = strconv.FormatInt(now.Add(ttl).Unix(), 10) + ":" + strings.ReplaceAll(who, ":", "_")
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(user))
	return user, base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// iceServers resolves the configured servers for one session: REST
// credentials are made for who. forGateway drops client-only servers.
func iceServers(cfg []ICEServer, who string, now time.Time, forGateway bool) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, s := range cfg {
		if forGateway && s.ClientOnly {
			continue
		}
		is := webrtc.ICEServer{URLs: s.URLs}
		switch {
		case s.Secret != "":
			is.Username, is.Credential = restCredentials(s.Secret, who, now, s.TTL)
		case s.Username != "":
			is.Username, is.Credential = s.Username, s.Credential
		}
		out = append(out, is)
	}
	return out
}

// linkHeaders formats ICE servers as WHEP Link header values (RFC 9725
// section 4.6).
func linkHeaders(servers []webrtc.ICEServer) []string {
	var out []string
	for _, s := range servers {
		for _, u := range s.URLs {
			v := "<" + u + `>; rel="ice-server"`
			if s.Username != "" {
				v += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, s.Username, fmt.Sprint(s.Credential))
			}
			out = append(out, v)
		}
	}
	return out
}
