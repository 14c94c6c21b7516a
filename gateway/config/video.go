package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/video/cameras"
	"github.com/shelterwatch/shelterwatch/video/whep"
)

// Camera is an IP camera relayed to remote supervisors (WebRTC, WHEP).
type Camera struct {
	// ID is unique among cameras: lower-case letters, digits and '-'. It
	// names the camera in the API (/api/v1/cameras/{id}/whep), in tokens'
	// camera lists and in the audit log. Required.
	ID string `yaml:"id"`
	// Name and NameZH are display names. Optional.
	Name   string `yaml:"name"`
	NameZH string `yaml:"name_zh"`
	// Zone is the zone the camera watches. Required.
	Zone string `yaml:"zone"`
	// URL is the camera's rtsp:// (or rtsps://) URL without credentials.
	// Required.
	URL string `yaml:"url"`
	// SubURL is the camera's sub stream (a lower resolution and bitrate
	// the camera sends beside the main one, e.g. Hikvision
	// /Streaming/Channels/102, Dahua subtype=1), with the same
	// credentials. Viewers on slow links and camera walls get it.
	// Optional.
	SubURL string `yaml:"sub_url"`
	// SubAlwaysOn pulls the sub stream from start to shutdown; by default
	// it is pulled only while someone may need it.
	SubAlwaysOn bool `yaml:"sub_always_on"`
	// Username and PasswordFile (a file holding the password) authenticate
	// to the camera (basic or digest, as it asks). Both or neither.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// Transport is "" (UDP, falling back to TCP), "tcp" or "udp".
	Transport string `yaml:"transport"`
	// OnDemand pulls the camera only while someone watches; the default
	// pulls always, so that a camera going dark raises an alarm even when
	// nobody is watching.
	OnDemand bool `yaml:"on_demand"`
	// Grace is how long an on-demand pull outlives its last viewer.
	// Default 10s.
	Grace Duration `yaml:"grace"`
	// DownAlarmAfter raises the alarm camera-down@dev:gateway.camera.<id> when an
	// always-on camera has not been live for this long. Default 1m.
	DownAlarmAfter Duration `yaml:"down_alarm_after"`
}

// PullURL is the URL with the credentials from PasswordFile, for the RTSP
// client only; it must never be logged.
func (c *Camera) PullURL() (Secret, error) { return c.withCredentials(c.URL) }

// SubPullURL is SubURL with the credentials ("" without a sub stream).
func (c *Camera) SubPullURL() (Secret, error) {
	if c.SubURL == "" {
		return "", nil
	}
	return c.withCredentials(c.SubURL)
}

func (c *Camera) withCredentials(raw string) (Secret, error) {
	if c.Username == "" {
		return Secret(raw), nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("config: camera %s: read password: %w", c.ID, err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("config: camera %s: url: %w", c.ID, err)
	}
	u.User = url.UserPassword(c.Username, strings.TrimRight(string(b), "\r\n"))
	return Secret(u.String()), nil
}

// Video configures how cameras reach viewers.
type Video struct {
	// WebRTCUDP is the one UDP address every WebRTC session uses (open
	// it in the firewall). Default ":8189".
	WebRTCUDP string `yaml:"webrtc_udp"`
	// WebRTCTCP, when set, also offers ICE over TCP on this address, for
	// viewers whose networks block UDP. Optional.
	WebRTCTCP string `yaml:"webrtc_tcp"`
	// AdvertiseIPs are the addresses viewers should use to reach the
	// gateway when it is behind 1:1 NAT (its public address); they replace
	// the local addresses in the gateway's ICE candidates. Optional.
	AdvertiseIPs []string `yaml:"advertise_ips"`
	// ICEServers are STUN and TURN servers offered to viewers (and used by
	// the gateway unless client_only). None by default: no traffic to
	// third parties unless configured.
	ICEServers []ICEServer `yaml:"ice_servers"`
	// MaxViewers bounds WebRTC sessions in total (default 32) and
	// MaxViewersPerCamera per camera (default 8).
	MaxViewers          int `yaml:"max_viewers"`
	MaxViewersPerCamera int `yaml:"max_viewers_per_camera"`
	// MaxViewersPerToken bounds the sessions of one person or token
	// (default 12: a 3×3 camera wall and a few more): one login cannot
	// take every slot.
	MaxViewersPerToken int `yaml:"max_viewers_per_token"`
}

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	// URLs are stun:, turn: or turns: URLs. Required.
	URLs []string `yaml:"urls"`
	// Username and CredentialFile are static TURN credentials.
	Username       string `yaml:"username"`
	CredentialFile string `yaml:"credential_file"`
	// SecretFile holds a TURN REST secret (coturn static-auth-secret):
	// every session then gets its own credentials, valid for TTL.
	SecretFile string `yaml:"secret_file"`
	// TTL of REST credentials. Default 12h.
	TTL Duration `yaml:"ttl"`
	// ClientOnly offers the server to viewers only.
	ClientOnly bool `yaml:"client_only"`
}

// ReadSecret returns the credential or REST secret from its file.
func (s *ICEServer) ReadSecret() (Secret, error) {
	path := s.CredentialFile
	if s.SecretFile != "" {
		path = s.SecretFile
	}
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("config: ice server %s: %w", strings.Join(s.URLs, ","), err)
	}
	return Secret(strings.TrimRight(string(b), "\r\n")), nil
}

// Video defaults.
const (
	DefaultWebRTCUDP            = ":8189"
	DefaultMaxViewers           = whep.DefaultMaxViewers
	DefaultMaxViewersPerCamera  = whep.DefaultMaxViewersPerCamera
	DefaultMaxViewersPerToken   = whep.DefaultMaxViewersPerViewer
	DefaultCameraGrace          = cameras.DefaultGrace
	DefaultCameraDownAlarmAfter = cameras.DefaultDownAfter
	DefaultTURNTTL              = 12 * time.Hour
)

func (c *Config) videoDefaults() {
	vd := &c.Video
	if vd.WebRTCUDP == "" {
		vd.WebRTCUDP = DefaultWebRTCUDP
	}
	if !c.src.isSet("video.max_viewers") {
		vd.MaxViewers = DefaultMaxViewers
	}
	if !c.src.isSet("video.max_viewers_per_camera") {
		vd.MaxViewersPerCamera = DefaultMaxViewersPerCamera
	}
	if !c.src.isSet("video.max_viewers_per_token") {
		vd.MaxViewersPerToken = DefaultMaxViewersPerToken
	}
	for i := range vd.ICEServers {
		if !c.src.isSet(idx("video.ice_servers", i) + ".ttl") {
			vd.ICEServers[i].TTL = Duration(DefaultTURNTTL)
		}
	}
	for i := range c.Cameras {
		p := idx("cameras", i)
		if !c.src.isSet(p + ".grace") {
			c.Cameras[i].Grace = Duration(DefaultCameraGrace)
		}
		if !c.src.isSet(p + ".down_alarm_after") {
			c.Cameras[i].DownAlarmAfter = Duration(DefaultCameraDownAlarmAfter)
		}
	}
}

// AllCameras in a token's camera list allows every camera.
const AllCameras = "*"

func (v *validator) video(zones map[string]int) map[string]bool {
	ids := map[string]int{}
	cams := map[string]bool{}
	for i := range v.c.Cameras {
		c := &v.c.Cameras[i]
		p := idx("cameras", i)
		if v.id(p+".id", c.ID, facilityIDRE, "lower-case letters, digits and '-'") {
			v.unique(ids, "cameras", "camera", c.ID, i)
			cams[c.ID] = true
		}
		if c.Zone == "" {
			v.errorf(p+".zone", "required")
		} else if _, ok := zones[c.Zone]; !ok {
			v.errorf(p+".zone", "unknown zone %s", quote(c.Zone))
		}
		if c.URL == "" {
			v.errorf(p+".url", "required")
		} else {
			v.rtspURL(p+".url", c.URL)
		}
		switch {
		case c.SubURL != "":
			v.rtspURL(p+".sub_url", c.SubURL)
			if c.SubURL == c.URL {
				v.errorf(p+".sub_url", "is the main url: leave it out, or give the camera's second stream")
			}
		case c.SubAlwaysOn:
			v.errorf(p+".sub_always_on", "needs sub_url")
		}
		switch {
		case c.Username != "" && c.PasswordFile == "":
			v.errorf(p+".username", "needs password_file")
		case c.Username == "" && c.PasswordFile != "":
			v.errorf(p+".password_file", "needs a username")
		case c.PasswordFile != "":
			v.file(p+".password_file", c.PasswordFile)
		}
		switch c.Transport {
		case "", "tcp", "udp":
		default:
			v.errorf(p+".transport", "unknown transport %s (want tcp, udp, or leave it out for UDP with TCP fallback)", quote(c.Transport))
		}
		v.positive(p+".grace", int64(c.Grace), c.Grace.String())
		v.positive(p+".down_alarm_after", int64(c.DownAlarmAfter), c.DownAlarmAfter.String())
	}
	vd := &v.c.Video
	if len(v.c.Cameras) > 0 || v.c.src.isSet("video.webrtc_udp") {
		v.addr("video.webrtc_udp", vd.WebRTCUDP)
	}
	if vd.WebRTCTCP != "" {
		v.addr("video.webrtc_tcp", vd.WebRTCTCP)
	}
	for i, ip := range vd.AdvertiseIPs {
		if net.ParseIP(ip) == nil {
			v.errorf(idx("video.advertise_ips", i), "not an IP address: %s", quote(ip))
		}
	}
	for i := range vd.ICEServers {
		s := &vd.ICEServers[i]
		p := idx("video.ice_servers", i)
		if len(s.URLs) == 0 {
			v.errorf(p+".urls", "at least one stun:, turn: or turns: URL is required")
		}
		turn := false
		for j, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				turn = true
			default:
				v.errorf(idx(p+".urls", j), "unsupported ICE server URL %s (want stun:, turn: or turns:)", quote(u))
			}
		}
		switch {
		case s.SecretFile != "" && (s.Username != "" || s.CredentialFile != ""):
			v.errorf(p+".secret_file", "use either secret_file (REST credentials) or username and credential_file, not both")
		case s.SecretFile != "":
			v.file(p+".secret_file", s.SecretFile)
		case (s.Username == "") != (s.CredentialFile == ""):
			v.errorf(p+".username", "username and credential_file go together")
		case s.CredentialFile != "":
			v.file(p+".credential_file", s.CredentialFile)
		case turn:
			v.errorf(p, "a TURN server needs credentials: secret_file, or username and credential_file")
		}
		v.positive(p+".ttl", int64(s.TTL), s.TTL.String())
	}
	v.positive("video.max_viewers", int64(vd.MaxViewers), fmt.Sprint(vd.MaxViewers))
	v.positive("video.max_viewers_per_camera", int64(vd.MaxViewersPerCamera), fmt.Sprint(vd.MaxViewersPerCamera))
	v.positive("video.max_viewers_per_token", int64(vd.MaxViewersPerToken), fmt.Sprint(vd.MaxViewersPerToken))
	return cams
}

// rtspURL checks a camera's stream URL.
func (v *validator) rtspURL(key, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		v.errorf(key, "invalid URL %s", quote(raw))
	case u.User != nil:
		v.errorf(key, "credentials in the URL are not allowed: use username and password_file")
	case u.Scheme != "rtsp" && u.Scheme != "rtsps":
		v.errorf(key, "unsupported scheme %s (want rtsp or rtsps)", quote(u.Scheme))
	case u.Hostname() == "":
		v.errorf(key, "URL %s has no host", quote(raw))
	}
}

// tokenCameras checks the camera lists of the API tokens.
func (v *validator) tokenCameras(cams map[string]bool) {
	for i, t := range v.c.HTTP.Tokens {
		for j, c := range t.Cameras {
			if c != AllCameras && !cams[c] {
				v.errorf(idx(idx("http.tokens", i)+".cameras", j), "unknown camera %s", quote(c))
			}
		}
	}
}
