// Package source pulls one camera's RTSP stream (gortsplib) into its hub,
// and keeps pulling: a camera that drops is reconnected with capped,
// jittered backoff, and its viewers stay subscribed to the hub meanwhile.
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
	// BackoffMin and BackoffMax bound the reconnect delay (defaults 500ms, 30s).
	BackoffMin, BackoffMax time.Duration
	Logger                 *slog.Logger
}

// States of a camera.
const (
	StateConnecting = "connecting"
	StateLive       = "live"
	StateFailed     = "failed"
)

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
		opts.BackoffMin = 500 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 30 * time.Second
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
		s.log.Warn("camera: stream lost, reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// attempt runs one session and leaves the status failed with its reason.
// live reports that the session relayed video, so a camera that was
// streaming is retried at once while one that keeps failing backs off.
func (s *Source) attempt(ctx context.Context) (live bool, err error) {
	s.setState(StateConnecting, "")
	before := s.frames.Load()
	err = s.session(ctx)
	// The cached GOP is now the past: a viewer who joins during the
	// outage must not be shown it as if it were live.
	s.opts.Hub.Reset()
	reason := err.Error()
	if ctx.Err() != nil {
		reason = "stopped"
	}
	s.setState(StateFailed, reason)
	return s.frames.Load() > before, err
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
	s.setState(StateLive, "")
	s.log.Info("camera: live", "video", media.Video, "audio", media.Audio, "note", media.Note)
	if err := c.Wait(); err != nil {
		return err
	}
	return errors.New("stream ended")
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

// Status returns the camera's current status.
func (s *Source) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.Reconnects = s.reconnects.Load()
	return st
}
