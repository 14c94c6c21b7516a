package whep

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// Errors a Cameras implementation or Authorize may return.
var (
	ErrUnknownCamera = errors.New("no such camera")
	// ErrCameraDown: the camera is failed or stalled; Acquire wraps it
	// with the camera's reason and the answer is 503 with Retry-After at
	// once, not a wait for a stream that is not coming.
	ErrCameraDown = errors.New("camera down")
	// ErrUnauthorized: no or unknown credentials (401).
	ErrUnauthorized = errors.New("authentication required")
	// ErrForbidden: known viewer, not allowed to see this camera (403).
	ErrForbidden = errors.New("not allowed to view this camera")
)

// Stream names one of a camera's streams.
type Stream string

// A camera's streams: every camera has a main stream; many also offer a
// sub stream (lower resolution and bitrate), for grids and slow links.
const (
	StreamMain Stream = "main"
	StreamSub  Stream = "sub"
)

// ErrNoSubStream: the camera has no sub stream.
var ErrNoSubStream = errors.New("the camera has no sub stream")

// Cameras gives sessions access to the cameras' hubs.
type Cameras interface {
	// Acquire returns the hub of one of the camera's streams for one
	// viewer and a release func the session calls when it no longer
	// needs it (an on-demand stream starts pulling on the first Acquire
	// and stops a grace period after the last release).
	// ErrUnknownCamera when there is no such camera, ErrNoSubStream when
	// the sub stream is asked of a camera without one.
	Acquire(ctx context.Context, camera string, stream Stream) (*hub.Hub, func(), error)
}

// Record is one viewing session, for the audit log.
type Record struct {
	ID     string    `json:"id"`
	Camera string    `json:"camera"`
	Who    string    `json:"who"`
	Remote string    `json:"remote"`
	Start  time.Time `json:"start"`
	// End is zero while the session runs.
	End time.Time `json:"end,omitzero"`
	// Bytes is the media sent (RTP payloads and headers).
	Bytes uint64 `json:"bytes"`
	// Reason is why it ended.
	Reason string `json:"reason,omitempty"`
	// Stream is the camera stream the session plays now, and Estimate
	// the viewer's link as the gateway estimates it (bit/s); both only
	// while it runs.
	Stream   Stream  `json:"stream,omitempty"`
	Estimate float64 `json:"estimate_bps,omitempty"`
	// RTT and Loss are from the player's last receiver report: the round
	// trip (ms, 0 unknown) and the fraction of video packets lost.
	RTT  float64 `json:"rtt_ms,omitempty"`
	Loss float64 `json:"loss,omitempty"`
	// PlayoutDelay is the delay the gateway asked the player to hold
	// frames for (ms; 0: none, the player plays as soon as it can): a
	// far viewer's, so that keyframes arrive without a freeze.
	PlayoutDelay float64 `json:"playout_delay_ms,omitempty"`
}

// Default viewer limits; the gateway's config applies the same ones.
const (
	DefaultMaxViewersPerCamera = 8
	DefaultMaxViewers          = 32
	// DefaultMaxViewersPerViewer: a supervisor's 3×3 wall of placements
	// and a few more; one person must not take every slot.
	DefaultMaxViewersPerViewer = 12
)

// Config configures the server.
type Config struct {
	// UDPAddr is the one UDP address all sessions' ICE uses (":8189").
	// Required.
	UDPAddr string
	// TCPAddr, when set, also offers ICE-TCP on one port, for viewers
	// whose networks block UDP.
	TCPAddr string
	// AdvertiseIPs replace the addresses of the gateway's host
	// candidates (the public address of a 1:1 NAT).
	AdvertiseIPs []string
	// ICEServers are offered to viewers.
	ICEServers []ICEServer
	// MaxViewersPerCamera and MaxViewers bound sessions (defaults
	// DefaultMaxViewersPerCamera, DefaultMaxViewers).
	MaxViewersPerCamera, MaxViewers int
	// MaxViewersPerViewer bounds the sessions of one viewer (one person
	// or token, as named by the authorizer; default
	// DefaultMaxViewersPerViewer). Past it the POST gets 429.
	MaxViewersPerViewer int
	// StartTimeout bounds the wait for an on-demand camera's first
	// connection (default 10s).
	StartTimeout time.Duration
	// ConnectTimeout ends sessions whose peer never connects (default 15s).
	ConnectTimeout time.Duration
	// Audit records each session when it starts and when it ends. When
	// it fails for a start, the offer is refused with 503 and the session
	// never starts.
	Audit  func(Record) error
	Logger *slog.Logger
}

// Server runs the WHEP sessions of all cameras.
type Server struct {
	cfg     Config
	cams    Cameras
	log     *slog.Logger
	api     *webrtc.API
	udp     net.PacketConn
	tcp     net.Listener
	udpMux  ice.UDPMux
	tcpMux  ice.TCPMux
	metrics *metrics
	// cert is the DTLS certificate of every session: making one per
	// session (pion's default) costs an ECDSA key generation on the path
	// to a viewer's first frame.
	cert webrtc.Certificate

	// estimators are the congestion controllers of peer connections
	// being set up, by peer connection id, until their session takes its
	// own.
	estimators sync.Map
	// linkOverride, when not 0, replaces what the sessions' receiver
	// reports say at every tick: 1 heavy loss, 2 a clean link. Tests set
	// it to drive a session across streams.
	linkOverride atomic.Int32

	mu       sync.Mutex
	sessions map[string]*session
	perCam   map[string]int
	perWho   map[string]int
	closed   bool
	wg       sync.WaitGroup
}

// New listens on the ICE ports and builds the WebRTC stack.
func New(cfg Config, cams Cameras) (*Server, error) {
	if cams == nil {
		return nil, errors.New("whep: cameras required")
	}
	if cfg.UDPAddr == "" {
		return nil, errors.New("whep: a UDP address for ICE is required")
	}
	if cfg.MaxViewersPerCamera <= 0 {
		cfg.MaxViewersPerCamera = DefaultMaxViewersPerCamera
	}
	if cfg.MaxViewers <= 0 {
		cfg.MaxViewers = DefaultMaxViewers
	}
	if cfg.MaxViewersPerViewer <= 0 {
		cfg.MaxViewersPerViewer = DefaultMaxViewersPerViewer
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 10 * time.Second
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, cams: cams, log: cfg.Logger, sessions: map[string]*session{}, perCam: map[string]int{}, perWho: map[string]int{},
		metrics: newMetrics()}
	udp, err := net.ListenPacket("udp", cfg.UDPAddr)
	if err != nil {
		return nil, fmt.Errorf("whep: listen for ICE on udp %s: %w", cfg.UDPAddr, err)
	}
	s.udp = udp
	lf := logging.NewDefaultLoggerFactory()
	lf.DefaultLogLevel = logging.LogLevelError
	s.udpMux = ice.NewUniversalUDPMuxDefault(ice.UniversalUDPMuxParams{UDPConn: udp, Logger: lf.NewLogger("ice-udp")})
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPAddr != "" {
		tcp, err := net.Listen("tcp", cfg.TCPAddr)
		if err != nil {
			udp.Close()
			return nil, fmt.Errorf("whep: listen for ICE-TCP on %s: %w", cfg.TCPAddr, err)
		}
		s.tcp = tcp
		s.tcpMux = webrtc.NewICETCPMux(lf.NewLogger("ice-tcp"), tcp, 8)
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	// A viewer whose tab or network vanished without a DELETE: no ICE
	// traffic for 5 s is "disconnected", 15 s "failed", and the session
	// ends (pion's defaults, 5 s and 25 s, keep a dead viewer's slot
	// longer than a supervisor takes to reopen the page).
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	// A lost DTLS flight is sent again after 200 ms (doubling), not pion's
	// 1 s: on a 4G link with 1 % loss that second was the whole tail of
	// the first-frame times.
	se.SetDTLSRetransmissionInterval(dtlsRetransmit)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// A gateway bound to loopback (tests, a reverse-proxied setup) must
	// still offer its address.
	if host, _, err := net.SplitHostPort(udp.LocalAddr().String()); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			se.SetIncludeLoopbackCandidate(true)
		}
	}
	if len(cfg.AdvertiseIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: cfg.AdvertiseIPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("whep: advertised addresses: %w", err)
		}
	}
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		s.closeListeners()
		return nil, err
	}
	// Offered by Chromium: the gateway may ask a far viewer's player to
	// hold frames a little longer (playout.go).
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: playoutDelayURI}, webrtc.RTPCodecTypeVideo); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("whep: playout delay extension: %w", err)
	}
	ir := &interceptor.Registry{}
	// Send-side bandwidth estimation (GCC over transport-wide congestion
	// control feedback, which Chromium and pion players send): each
	// session paces its video at its estimate and picks its stream by it.
	// The estimator only estimates (no-op pacer): the session paces whole
	// frames itself, so it can decide what to skip when the link is slow.
	// It comes first in the chain and the transport-wide sequence numbers
	// second, as pion's estimator needs them on every packet it sees.
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		return gcc.NewSendSideBWE(gcc.SendSideBWEInitialBitrate(initialEstimate), gcc.SendSideBWEMinBitrate(minEstimate),
			gcc.SendSideBWEPacer(gcc.NewNoOpPacer()), gcc.WithLoggerFactory(lf))
	})
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("whep: bandwidth estimator: %w", err)
	}
	ccf.OnNewPeerConnection(func(id string, e cc.BandwidthEstimator) { s.estimators.Store(id, e) })
	ir.Add(ccf)
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("whep: transport-wide congestion control: %w", err)
	}
	// A NACK is answered from the last 256 packets sent (about a second
	// at 2 Mbit/s, far beyond any round trip a retransmission can still
	// help): pion's default 1024 kept ~1.2 MB per viewer.
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(me, ir,
		webrtc.WithNackResponderOptions(nack.ResponderSize(256))); err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("whep: interceptors: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("whep: DTLS key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		s.closeListeners()
		return nil, fmt.Errorf("whep: DTLS certificate: %w", err)
	}
	s.cert = *cert
	s.api = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
	return s, nil
}

func (s *Server) closeListeners() {
	if s.udpMux != nil {
		s.udpMux.Close()
	}
	if s.udp != nil {
		s.udp.Close()
	}
	if s.tcpMux != nil {
		s.tcpMux.Close()
	}
	if s.tcp != nil {
		s.tcp.Close()
	}
}

// UDPAddr is the shared ICE UDP address (its port when configured as 0).
func (s *Server) UDPAddr() net.Addr { return s.udp.LocalAddr() }

// TCPAddr is the ICE-TCP address, or nil.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// Collector exposes the sessions' metrics.
func (s *Server) Collector() prometheus.Collector { return s.metrics }

// Sessions lists the running sessions.
func (s *Server) Sessions() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Record, 0, len(s.sessions))
	for _, ss := range s.sessions {
		r := ss.record()
		r.Stream, _ = ss.stream.Load().(Stream)
		r.Estimate = ss.estimate()
		r.RTT, r.Loss = ss.link.last()
		r.PlayoutDelay = float64(ss.playout.min().Milliseconds())
		out = append(out, r)
	}
	return out
}

// Close ends every session and releases the ports.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	all := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	s.mu.Unlock()
	for _, ss := range all {
		ss.stop("gateway shutting down")
	}
	s.wg.Wait()
	s.closeListeners()
	return nil
}

// admit reserves a viewer slot on camera for who, or says why not.
func (s *Server) admit(camera, who string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return errShuttingDown
	case len(s.sessions) >= s.cfg.MaxViewers:
		return fmt.Errorf("%w: the gateway already serves %d viewers", errTooMany, s.cfg.MaxViewers)
	case s.perCam[camera] >= s.cfg.MaxViewersPerCamera:
		return fmt.Errorf("%w: camera %s already has %d viewers", errTooMany, camera, s.cfg.MaxViewersPerCamera)
	case s.perWho[who] >= s.cfg.MaxViewersPerViewer:
		return fmt.Errorf("%w: %s already watches %d sessions, the most one viewer may; end one first", errViewerLimit, who, s.cfg.MaxViewersPerViewer)
	}
	s.perCam[camera]++
	s.perWho[who]++
	return nil
}

func (s *Server) unadmit(camera, who string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.perCam[camera]--
	if s.perCam[camera] <= 0 {
		delete(s.perCam, camera)
	}
	s.perWho[who]--
	if s.perWho[who] <= 0 {
		delete(s.perWho, who)
	}
}

var (
	errShuttingDown = errors.New("the gateway is shutting down")
	errTooMany      = errors.New("too many viewers")
	errViewerLimit  = errors.New("viewer limit reached")
	// errAuditUnavailable names no file or error: the viewer needs to
	// know why and whom to tell, not where the gateway keeps its log.
	errAuditUnavailable = errors.New("viewing is refused while the audit log cannot record who watches; the gateway reports this as a fault to its managers")
)

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Codec capabilities the gateway sends. H.264 is offered as constrained
// baseline (what every browser negotiates); the camera's real profile
// plays regardless, as browsers decode any profile they know.
var (
	capH264 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: videoFeedback}
	capH265 = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: videoFeedback}
	capPCMU = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}
	capPCMA = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000, Channels: 1}
	capOpus = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}

	videoFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
)

func registerCodecs(me *webrtc.MediaEngine) error {
	type reg struct {
		c  webrtc.RTPCodecCapability
		pt webrtc.PayloadType
		k  webrtc.RTPCodecType
	}
	h264 := func(fmtp string) webrtc.RTPCodecCapability {
		c := capH264
		c.SDPFmtpLine = fmtp
		return c
	}
	for _, r := range []reg{
		{capH264, 102, webrtc.RTPCodecTypeVideo},
		{h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"), 103, webrtc.RTPCodecTypeVideo},
		{h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"), 104, webrtc.RTPCodecTypeVideo},
		{h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032"), 105, webrtc.RTPCodecTypeVideo},
		{capH265, 106, webrtc.RTPCodecTypeVideo},
		{capOpus, 111, webrtc.RTPCodecTypeAudio},
		{capPCMU, 0, webrtc.RTPCodecTypeAudio},
		{capPCMA, 8, webrtc.RTPCodecTypeAudio},
	} {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: r.c, PayloadType: r.pt}, r.k); err != nil {
			return fmt.Errorf("whep: register %s: %w", r.c.MimeType, err)
		}
	}
	return nil
}
