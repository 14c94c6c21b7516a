// Package source pulls one camera's RTSP stream (gortsplib) into its hub,
// and keeps pulling: a camera that drops is reconnected with jittered
// backoff capped at about 2 s, and while its RTSP port refuses
// connections the port is probed every 250 ms, so a rebooted camera is
// pulled again within a moment of answering. A camera that stops sending
// frames with its connection open (frozen firmware, a stopped server) is
// "stalled" after max(2 s, three frame intervals): its cached GOP is
// forgotten and the connection replaced. Viewers stay subscribed to the
// hub throughout.
//
// Transport: UDP first with TCP-interleaved fallback (gortsplib's default),
// or forced. Credentials in the URL (rtsp://user:pass@host/path) are used
// for basic or digest authentication and never logged.
//
// Codecs are passed through, never transcoded. Video is H.264, or H.265
// when the camera offers no H.264; the parameter sets (VPS, SPS, PPS) are
// put in front of every keyframe so any viewer can start decoding from it.
// Audio is relayed when a WebRTC viewer can play it as it is: G.711 at
// 8000 Hz mono, or Opus; one hub frame per RTP packet. Other audio (AAC,
// usually) is left out and the status note says why. A camera that sends
// B-frames is relayed too, with a status warning, since WebRTC players
// stutter on reordered frames.
//
// Concurrency: Run owns the connection; Status may be called from any
// goroutine. With UDP, video and audio packets arrive on different
// goroutines and both publish to the hub, which is safe.
//
// Backpressure: none here. Publish never blocks; the hub drops (and counts)
// frames for viewers that fall behind.
package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/pion/rtp"

	"github.com/shelterwatch/shelterwatch/internal/backoff"
	"github.com/shelterwatch/shelterwatch/video/hub"
)

// Transports.
const (
	TransportAuto = "" // UDP, falling back to TCP
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
)

// Options configure a Source.
type Options struct {
	Name      string
	URL       string
	Transport string
	Hub       *hub.Hub
	// BackoffMin and BackoffMax bound the reconnect delay (defaults
	// 250ms, 2s): a camera is a device on the LAN, retrying it costs
	// little, and a viewer waits for every second of it.
	BackoffMin, BackoffMax time.Duration
	// StallAfter is the least silence that makes a live camera stalled
	// (default 2s; three frame intervals when that is longer).
	StallAfter time.Duration
	Logger     *slog.Logger
}

// States of a camera.
const (
	StateConnecting = "connecting"
	StateLive       = "live"
	StateFailed     = "failed"
	// StateStalled: the connection was open but no frame came for the
	// stall time; the source reconnects and stays stalled until video
	// flows again.
	StateStalled = "stalled"
)

// probeEvery is how often a refused camera's RTSP port is tried while
// the source waits to reconnect.
const probeEvery = 250 * time.Millisecond

// Status is what the API shows per camera.
type Status struct {
	Name       string    `json:"name"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Since      time.Time `json:"since"`
	Reconnects uint64    `json:"reconnects"`
	Frames     uint64    `json:"frames"`
	// FPS and Bitrate are measured over the last few seconds.
	FPS     float64 `json:"fps"`
	Bitrate float64 `json:"bitrate_bps"`
	// LastKeyframe is when the last keyframe arrived (zero: none yet).
	LastKeyframe time.Time `json:"last_keyframe,omitzero"`
	// Video and Audio are the codecs relayed in the latest session
	// (hub.CodecH264, hub.CodecPCMU, ...; Audio "" for none).
	Video string `json:"video,omitempty"`
	Audio string `json:"audio,omitempty"`
	// Note explains a track the camera sends but the gateway does not
	// relay (e.g. AAC audio), for the operator.
	Note string `json:"note,omitempty"`
	// Warning is set when the latest session has a problem viewers will
	// notice but that does not stop the relay: B-frames.
	Warning string `json:"warning,omitempty"`
	// BFrames counts video access units whose PTS was earlier than the
	// one before (reordered frames), over all sessions.
	BFrames uint64 `json:"b_frames,omitempty"`
	// AudioPackets counts relayed audio packets over all sessions.
	AudioPackets uint64 `json:"audio_packets,omitempty"`
}

// Source pulls one camera. Run owns the connection.
type Source struct {
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	status Status
	// rate window
	winStart          time.Time
	winFrames, winBit uint64
	lastFrame         time.Time
	// stalled is set when the last session ended in a stall: the camera
	// shows stalled, not connecting, until video flows again.
	stalled bool

	frames, reconnects atomic.Uint64

	// dial replaces gortsplib's dialer when set (tests keep a hostile
	// camera from redirecting the client elsewhere).
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// New checks the options.
func New(opts Options) (*Source, error) {
	if opts.Hub == nil || opts.Name == "" {
		return nil, errors.New("source: a name and a hub are required")
	}
	u, err := base.ParseURL(opts.URL)
	if err != nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") {
		return nil, fmt.Errorf("source %s: want an rtsp:// or rtsps:// URL", opts.Name)
	}
	switch opts.Transport {
	case TransportAuto, TransportTCP, TransportUDP:
	default:
		return nil, fmt.Errorf("source %s: transport %q: want tcp, udp or empty (auto)", opts.Name, opts.Transport)
	}
	if opts.BackoffMin <= 0 {
		opts.BackoffMin = 250 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 2 * time.Second
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 2 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{opts: opts, log: opts.Logger.With("camera", opts.Name, "url", redact(opts.URL))}
	s.setState(StateConnecting, "")
	return s, nil
}

// redact drops the password from a URL for logs and status.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable URL]"
	}
	return u.Redacted()
}

// Run pulls until ctx ends, reconnecting for ever.
func (s *Source) Run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		live, err := s.attempt(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if live {
			attempt = 0 // it was live: start the backoff again
		}
		s.reconnects.Add(1)
		wait := backoff.Delay(attempt, s.opts.BackoffMin, s.opts.BackoffMax)
		if errors.Is(err, errStalled) {
			wait = 0 // the camera was streaming a moment ago: ask again now
		}
		s.log.Warn("camera: stream lost, reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		if refusedConnection(err) {
			// The camera is off or rebooting: try its port until it
			// answers, then connect at once.
			if s.waitForPort(ctx, wait) {
				attempt = -1
			}
		} else {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// errStalled ends a session whose camera sent no frame for the stall time.
var errStalled = errors.New("stalled")

// refusedConnection reports whether err is the camera's host refusing or
// not answering a connection, as opposed to a camera that answered and
// said no (401, 404) or sent something bad.
func refusedConnection(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// waitForPort tries the camera's RTSP port every probeEvery, for at most
// wait (at least one probe period), and reports whether it answered.
func (s *Source) waitForPort(ctx context.Context, wait time.Duration) bool {
	u, err := base.ParseURL(s.opts.URL)
	if err != nil {
		return false
	}
	addr := u.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "554")
	}
	dial := s.dial
	if dial == nil {
		d := &net.Dialer{Timeout: probeEvery}
		dial = d.DialContext
	}
	deadline := time.Now().Add(max(wait, probeEvery))
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, probeEvery)
		c, err := dial(pctx, "tcp", addr)
		cancel()
		if err == nil {
			_ = c.Close()
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// attempt runs one session and leaves the status failed with its reason.
// live reports that the session relayed video, so a camera that was
// streaming is retried at once while one that keeps failing backs off.
func (s *Source) attempt(ctx context.Context) (live bool, err error) {
	if !s.isStalled() {
		s.setState(StateConnecting, "")
	}
	before := s.frames.Load()
	err = s.session(ctx)
	// The cached GOP is now the past: a viewer who joins during the
	// outage must not be shown it as if it were live.
	s.opts.Hub.Reset()
	reason := err.Error()
	switch {
	case ctx.Err() != nil:
		s.setStalled(false)
		s.setState(StateFailed, "stopped")
	case errors.Is(err, errStalled):
		s.setStalled(true)
		s.setState(StateStalled, reason)
	case s.isStalled():
		// Still no video since the stall: say so, with what the
		// reconnect met.
		s.setState(StateStalled, "no video since the stall; reconnecting: "+reason)
	default:
		s.setState(StateFailed, reason)
	}
	return s.frames.Load() > before, err
}

func (s *Source) isStalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

func (s *Source) setStalled(v bool) {
	s.mu.Lock()
	s.stalled = v
	s.mu.Unlock()
}

// session is one connection: describe, setup, play, relay until an error,
// which it always returns.
func (s *Source) session(ctx context.Context) error {
	u, err := base.ParseURL(s.opts.URL)
	if err != nil {
		return err
	}
	c := s.newClient(u)
	if err := c.Start2(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	// Closing the client is what unblocks Describe, Setup, Play and Wait
	// when ctx ends.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	desc, tr, err := s.describe(c, u)
	if err != nil {
		return err
	}
	if err := s.setup(c, desc, tr); err != nil {
		return err
	}
	media := tr.media()
	// A new stream may bring new parameters: viewers resume at its first
	// keyframe, knowing what they will get.
	s.opts.Hub.Reset()
	s.opts.Hub.SetMedia(media)
	s.setMedia(media)
	return s.relay(c, tr, media)
}

// newClient makes the RTSP client for one session, with the configured
// transport (nil: gortsplib's UDP first, then TCP).
func (s *Source) newClient(u *base.URL) *gortsplib.Client {
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: 10 * time.Second,
		DialContext: s.dial,
		// gortsplib prints these with the standard logger by default.
		OnTransportSwitch: func(err error) { s.log.Info("camera: switching transport", "err", err) },
		OnPacketsLost:     func(n uint64) { s.log.Debug("camera: RTP packets lost", "lost", n) },
		OnDecodeError:     func(err error) { s.log.Debug("camera: bad packet", "err", err) },
	}
	switch s.opts.Transport {
	case TransportTCP:
		t := gortsplib.TransportTCP
		c.Transport = &t
	case TransportUDP:
		t := gortsplib.TransportUDP
		c.Transport = &t
	}
	return c
}

// sessionTracks are the tracks one session relays.
type sessionTracks struct {
	vmedia  *description.Media
	vformat format.Format
	video   *videoTrack
	decode  func(*rtp.Packet) ([][]byte, error)
	// audio is nil when the session relays video only; note then says
	// why, if the camera offers audio.
	audio *audioTrack
	note  string
}

// media is what the hub and the status announce for the session.
func (tr *sessionTracks) media() hub.Media {
	m := hub.Media{Video: tr.video.codec, Note: tr.note}
	if tr.audio != nil {
		m.Audio, m.AudioRate, m.AudioChannels = tr.audio.codec, tr.audio.rate, tr.audio.channels
	}
	return m
}

// describe asks the camera for its tracks and picks the ones to relay.
// Every track is checked before any SETUP, since a bad control URL would
// crash the client (see checkControl); a bad video track ends the session,
// a bad audio track only drops the audio.
func (s *Source) describe(c *gortsplib.Client, u *base.URL) (*description.Session, *sessionTracks, error) {
	desc, _, err := c.Describe(u)
	if err != nil {
		return nil, nil, fmt.Errorf("describe: %w", err)
	}
	tr := &sessionTracks{}
	tr.vmedia, tr.vformat = pickVideo(desc)
	if tr.vmedia == nil {
		return nil, nil, errors.New("the camera offers no H.264 or H.265 video track")
	}
	tr.video = newVideoTrack(tr.vformat)
	if tr.decode, err = videoDecoder(tr.vformat); err != nil {
		return nil, nil, err
	}
	tr.audio, tr.note = pickAudio(desc)
	if tr.audio != nil && tr.audio.media == tr.vmedia {
		tr.audio = nil // one media cannot be set up twice; a camera would not mix them
	}
	if err := checkControl(desc, tr.vmedia); err != nil {
		return nil, nil, fmt.Errorf("setup video: %w", err)
	}
	if tr.audio != nil {
		if err := checkControl(desc, tr.audio.media); err != nil {
			tr.note = fmt.Sprintf("audio %s is not relayed: %v", tr.audio.codec, err)
			tr.audio = nil
		}
	}
	return desc, tr, nil
}

// setup sets up the chosen tracks. A camera that refuses the audio track
// keeps its video: the session goes on without audio, and tr says why.
func (s *Source) setup(c *gortsplib.Client, desc *description.Session, tr *sessionTracks) error {
	if _, err := c.Setup(desc.BaseURL, tr.vmedia, 0, 0); err != nil {
		return fmt.Errorf("setup video: %w", err)
	}
	if tr.audio == nil {
		return nil
	}
	if _, err := c.Setup(desc.BaseURL, tr.audio.media, 0, 0); err != nil {
		var refused liberrors.ErrClientBadStatusCode
		if !errors.As(err, &refused) {
			return fmt.Errorf("setup audio: %w", err)
		}
		// The camera said no, and the connection is still good: video
		// alone is worth showing.
		tr.note = fmt.Sprintf("audio %s is not relayed: the camera refused to set it up (%d %s)", tr.audio.codec, refused.Code, refused.Message)
		s.log.Warn("camera: audio setup refused", "err", err)
		tr.audio = nil
	}
	return nil
}

// relay plays the stream and publishes its packets to the hub until the
// connection fails or the camera ends the stream.
func (s *Source) relay(c *gortsplib.Client, tr *sessionTracks, media hub.Media) error {
	c.OnPacketRTP(tr.vmedia, tr.vformat, s.onVideo(tr))
	if tr.audio != nil {
		c.OnPacketRTP(tr.audio.media, tr.audio.format, s.onAudio(tr.audio))
	}
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	if !s.isStalled() {
		s.setState(StateLive, "")
	}
	s.log.Info("camera: playing", "video", media.Video, "audio", media.Audio, "note", media.Note)
	stalled := make(chan time.Duration, 1)
	stopWatch := s.watchStall(c, stalled)
	err := c.Wait()
	stopWatch()
	select {
	case silent := <-stalled:
		return fmt.Errorf("%w: no video for %.1f s with the connection open", errStalled, silent.Seconds())
	default:
	}
	if err != nil {
		return err
	}
	return errors.New("stream ended")
}

// watchStall closes the session's client when no frame arrived for the
// stall time, sending the silence on stalled; the returned func stops it.
func (s *Source) watchStall(c *gortsplib.Client, stalled chan<- time.Duration) func() {
	start := time.Now()
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				s.mu.Lock()
				last, fps := s.lastFrame, s.status.FPS
				s.mu.Unlock()
				if last.Before(start) {
					last = start // nothing yet in this session: count from PLAY
				}
				limit := s.opts.StallAfter
				if fps > 0 {
					limit = max(limit, time.Duration(3*float64(time.Second)/fps))
				}
				if silent := now.Sub(last); silent >= limit {
					stalled <- silent
					c.Close()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// onVideo returns the handler of the video track's RTP packets: it
// reassembles access units into hub frames. Packets that only start or
// continue an access unit are normal and not logged.
func (s *Source) onVideo(tr *sessionTracks) func(*rtp.Packet) {
	return func(pkt *rtp.Packet) {
		au, err := tr.decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) &&
				!errors.Is(err, rtph265.ErrMorePacketsNeeded) && !errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) {
				s.log.Debug("camera: bad RTP packet", "err", err)
			}
			return
		}
		f, backwards := tr.video.frame(au, pkt.Timestamp, time.Now())
		if backwards {
			s.reordered(tr.video.codec)
		}
		if len(f.NALUs) == 0 {
			return
		}
		s.opts.Hub.Publish(f)
		s.count(f)
	}
}

// onAudio returns the handler of the audio track's RTP packets: one hub
// frame per packet, timed by the session's own RTP clock.
func (s *Source) onAudio(audio *audioTrack) func(*rtp.Packet) {
	var clock rtpClock
	return func(pkt *rtp.Packet) {
		if len(pkt.Payload) == 0 {
			return
		}
		s.opts.Hub.Publish(&hub.Frame{
			// The payload is the packet's buffer; the frame outlives
			// the callback in viewers' queues.
			NALUs:    [][]byte{bytes.Clone(pkt.Payload)},
			PTS:      ticksToDuration(clock.at(pkt.Timestamp), audio.rate),
			Audio:    true,
			Received: time.Now(),
		})
		s.countAudio()
	}
}

// checkControl checks that a media's control URL (the SETUP target) can be
// built. gortsplib (v4.16.2) makes a nil URL without an error from a
// control attribute that is no URL (a bad %-escape, a control character),
// and Client.Setup then dereferences it on the client's own goroutine,
// where no recover can catch it: one camera's SDP would crash the gateway.
func checkControl(desc *description.Session, m *description.Media) error {
	u, err := m.URL(desc.BaseURL)
	if err != nil {
		return fmt.Errorf("the camera's description has no usable URL for the track: %w", err)
	}
	if u == nil {
		return fmt.Errorf("the camera's description has a track control %q that is not a URL", m.Control)
	}
	return nil
}

// videoDecoder returns the RTP depacketizer for an H.264 or H.265 format.
func videoDecoder(f format.Format) (func(*rtp.Packet) ([][]byte, error), error) {
	switch f := f.(type) {
	case *format.H264:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("H.264 decoder: %w", err)
		}
		return dec.Decode, nil
	case *format.H265:
		dec, err := f.CreateDecoder()
		if err != nil {
			return nil, fmt.Errorf("H.265 decoder: %w", err)
		}
		return dec.Decode, nil
	}
	return nil, fmt.Errorf("video format %s", f.Codec())
}

func (s *Source) count(f *hub.Frame) {
	s.frames.Add(1)
	now := f.Received
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Frames++
	if f.Key {
		s.status.LastKeyframe = now
	}
	s.lastFrame = now
	if s.stalled || s.status.State != StateLive {
		// Video flows (again): the camera is live.
		s.stalled = false
		s.status.State, s.status.Reason, s.status.Since = StateLive, "", now
	}
	s.winFrames++
	s.winBit += uint64(f.Size()) * 8
	if el := now.Sub(s.winStart); el >= 2*time.Second || s.winStart.IsZero() {
		if !s.winStart.IsZero() {
			s.status.FPS = float64(s.winFrames) / el.Seconds()
			s.status.Bitrate = float64(s.winBit) / el.Seconds()
		}
		s.winStart, s.winFrames, s.winBit = now, 0, 0
	}
}

func (s *Source) countAudio() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.AudioPackets++
}

// reordered counts a video access unit whose PTS went backwards and warns
// once per session.
func (s *Source) reordered(codec string) {
	s.mu.Lock()
	s.status.BFrames++
	first := s.status.Warning == ""
	if first {
		s.status.Warning = bFrameWarning(codec)
	}
	s.mu.Unlock()
	if first {
		s.log.Warn("camera: the camera sends B-frames; WebRTC viewers may stutter")
	}
}

// setMedia records a new session's media in the status.
func (s *Source) setMedia(m hub.Media) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status.Video, s.status.Audio, s.status.Note, s.status.Warning = m.Video, m.Audio, m.Note, ""
}

func (s *Source) setState(state, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status.State != state {
		s.status.Since = time.Now()
	}
	s.status.Name, s.status.State, s.status.Reason = s.opts.Name, state, reason
	if state != StateLive {
		s.status.FPS, s.status.Bitrate = 0, 0
	}
}

// Status returns the camera's current status. Frame rate and bitrate
// decay as soon as frames stop: they are measured up to now, not up to
// the last frame, and are zero after a second without one.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Reconnects = s.reconnects.Load()
	if st.State == StateLive && !s.lastFrame.IsZero() {
		now := time.Now()
		switch silent := now.Sub(s.lastFrame); {
		case silent >= time.Second:
			st.FPS, st.Bitrate = 0, 0
		case silent > 250*time.Millisecond && now.Sub(s.winStart) > 0:
			// The window so far, to now: lower with every frame that
			// does not come.
			el := now.Sub(s.winStart).Seconds()
			st.FPS = min(st.FPS, float64(s.winFrames)/el)
			st.Bitrate = min(st.Bitrate, float64(s.winBit)/el)
		}
	}
	return st
}
