// Package source pulls one camera's RTSP stream (gortsplib) into its hub,
// and keeps pulling: a camera that drops is reconnected with capped,
// jittered backoff, and its viewers stay subscribed to the hub meanwhile.
//
// Transport: UDP first with TCP-interleaved fallback (gortsplib's default),
// or forced. Credentials in the URL (rtsp://user:pass@host/path) are used
// for basic or digest authentication and never logged. H.264 is relayed;
// SPS and PPS are put in front of every keyframe so any viewer can start
// decoding from it.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
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
		s.setState(StateConnecting, "")
		err := s.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.setState(StateFailed, err.Error())
		if s.live() {
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

func (s *Source) live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.Frames > 0
}

// session is one connection: describe, setup, play, relay until an error.
func (s *Source) session(ctx context.Context) error {
	u, err := base.ParseURL(s.opts.URL)
	if err != nil {
		return err
	}
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, ReadTimeout: 10 * time.Second}
	switch s.opts.Transport {
	case TransportTCP:
		t := gortsplib.TransportTCP
		c.Transport = &t
	case TransportUDP:
		t := gortsplib.TransportUDP
		c.Transport = &t
	}
	if err := c.Start2(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()

	desc, _, err := c.Describe(u)
	if err != nil {
		return fmt.Errorf("describe: %w", err)
	}
	var forma *format.H264
	medi := desc.FindFormat(&forma)
	if medi == nil {
		return errors.New("the camera offers no H.264 video track")
	}
	dec, err := forma.CreateDecoder()
	if err != nil {
		return fmt.Errorf("H.264 decoder: %w", err)
	}
	if _, err := c.Setup(desc.BaseURL, medi, 0, 0); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	// A new stream may bring new parameters: viewers resume at its first
	// keyframe.
	s.opts.Hub.Reset()
	s.opts.Hub.SetMedia(hub.Media{Video: hub.CodecH264})
	sps, pps := forma.SPS, forma.PPS
	var firstTS uint32
	var haveFirst bool
	c.OnPacketRTP(medi, forma, func(pkt *rtp.Packet) {
		au, err := dec.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) {
				s.log.Debug("camera: bad RTP packet", "err", err)
			}
			return
		}
		// Presentation time from the RTP clock (90 kHz), relative to the
		// session's first packet; wrap-around is handled by the uint32
		// subtraction.
		if !haveFirst {
			firstTS, haveFirst = pkt.Timestamp, true
		}
		pts := int64(pkt.Timestamp - firstTS)
		key := h264.IsRandomAccess(au)
		hasSPS, hasPPS := false, false
		for _, n := range au {
			if len(n) == 0 {
				continue
			}
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				sps, hasSPS = n, true
			case h264.NALUTypePPS:
				pps, hasPPS = n, true
			}
		}
		if key && (!hasSPS || !hasPPS) && sps != nil && pps != nil {
			au = append([][]byte{sps, pps}, au...)
		}
		f := &hub.Frame{NALUs: au, PTS: time.Duration(pts) * time.Second / 90000, Key: key, Received: time.Now()}
		s.opts.Hub.Publish(f)
		s.count(f)
	})
	if _, err := c.Play(nil); err != nil {
		return fmt.Errorf("play: %w", err)
	}
	s.setState(StateLive, "")
	s.log.Info("camera: live")
	if err := c.Wait(); err != nil {
		return err
	}
	return errors.New("stream ended")
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
