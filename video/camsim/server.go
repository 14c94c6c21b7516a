package camsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
)

const h264ClockRate = 90000 // Hz, the RTP clock of H.264

// Camera is one simulated camera: an RTSP path and the clip it loops.
type Camera struct {
	Path string // e.g. "/cam1"
	Clip *Clip
}

// Options configures a Server.
type Options struct {
	// Address is the RTSP (TCP) listen address, e.g. "127.0.0.1:0".
	Address string
	// UDPRTPAddress and UDPRTCPAddress enable the UDP transport when both are
	// set. RTSP needs an even RTP port and the next port for RTCP, e.g.
	// ":8000" and ":8001". Empty means TCP transport only.
	UDPRTPAddress  string
	UDPRTCPAddress string
	Cameras        []Camera
	// Now is the clock written into the send-time stamps; time.Now if nil.
	Now func() time.Time
}

// Server is an RTSP server that serves each camera's clip in a loop.
type Server struct {
	opts    Options
	rtsp    *gortsplib.Server
	cameras map[string]*camera

	mu sync.Mutex // guards ln and each camera's stream until Start returns
	ln net.Listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type camera struct {
	Camera
	media  *description.Media
	stream *gortsplib.ServerStream
}

// New checks the options and returns a server that is not yet listening.
func New(opts Options) (*Server, error) {
	if opts.Address == "" {
		return nil, errors.New("camsim: new server: address is empty")
	}
	if (opts.UDPRTPAddress == "") != (opts.UDPRTCPAddress == "") {
		return nil, errors.New("camsim: new server: set both UDP addresses or neither")
	}
	if len(opts.Cameras) == 0 {
		return nil, errors.New("camsim: new server: no cameras")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, cameras: make(map[string]*camera)}
	for i, c := range opts.Cameras {
		key := pathKey(c.Path)
		if key == "" || c.Clip == nil || len(c.Clip.AccessUnits) == 0 {
			return nil, fmt.Errorf("camsim: new server: camera %d: needs a path and a clip", i)
		}
		if _, dup := s.cameras[key]; dup {
			return nil, fmt.Errorf("camsim: new server: camera %d: duplicate path %q", i, c.Path)
		}
		s.cameras[key] = &camera{Camera: c}
	}
	return s, nil
}

func pathKey(p string) string { return strings.Trim(p, "/") }

// Start listens and starts every camera. The cameras stop when ctx is done
// or at Close; Close must be called in either case.
func (s *Server) Start(ctx context.Context) error {
	s.rtsp = &gortsplib.Server{
		Handler:        (*handler)(s),
		RTSPAddress:    s.opts.Address,
		UDPRTPAddress:  s.opts.UDPRTPAddress,
		UDPRTCPAddress: s.opts.UDPRTCPAddress,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			s.mu.Lock()
			s.ln = ln
			s.mu.Unlock()
			return ln, err
		},
	}
	if err := s.rtsp.Start(); err != nil {
		return fmt.Errorf("camsim: start RTSP server: %w", err)
	}
	for _, c := range s.cameras {
		forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1, SPS: c.Clip.SPS, PPS: c.Clip.PPS}
		c.media = &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
		stream := &gortsplib.ServerStream{
			Server: s.rtsp,
			Desc:   &description.Session{Medias: []*description.Media{c.media}},
		}
		if err := stream.Initialize(); err != nil {
			s.rtsp.Close()
			return fmt.Errorf("camsim: start camera %s: %w", c.Path, err)
		}
		// The listener is already accepting: publish the stream to the
		// handler only once it is ready.
		s.mu.Lock()
		c.stream = stream
		s.mu.Unlock()
	}
	ctx, s.cancel = context.WithCancel(ctx)
	for _, c := range s.cameras {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.run(ctx, c)
		}()
	}
	return nil
}

// Addr returns the RTSP listen address, nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Close stops the cameras, waits for them and closes the server and every
// reader's connection. Later calls do nothing.
func (s *Server) Close() error {
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	s.wg.Wait()
	for _, c := range s.cameras {
		c.stream.Close()
	}
	s.rtsp.Close()
	return nil
}

// run loops the camera's clip until ctx is done. Access unit n has the RTP
// timestamp n frames after the first, so timestamps stay continuous across
// loops.
func (s *Server) run(ctx context.Context, c *camera) {
	enc, err := c.media.Formats[0].(*format.H264).CreateEncoder()
	if err != nil {
		panic(err) // only fails on an unsupported packetization mode, fixed above
	}
	ticks := uint32(c.Clip.FrameDuration.Seconds()*h264ClockRate + 0.5)
	tick := time.NewTicker(c.Clip.FrameDuration)
	defer tick.Stop()
	var rtpTime uint32
	for n := 0; ; n++ {
		if err := s.send(enc, c, c.Clip.AccessUnits[n%len(c.Clip.AccessUnits)], rtpTime); err != nil {
			return
		}
		rtpTime += ticks
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) send(enc *rtph264.Encoder, c *camera, au AccessUnit, rtpTime uint32) error {
	nalus := make([][]byte, 0, 3+len(au.Slices))
	if au.IDR {
		nalus = append(nalus, c.Clip.SPS, c.Clip.PPS)
	}
	now := s.opts.Now()
	nalus = append(nalus, stampNALU(now))
	nalus = append(nalus, au.Slices...)
	pkts, err := enc.Encode(nalus)
	if err != nil {
		return fmt.Errorf("camsim: packetize %s: %w", c.Path, err)
	}
	for _, pkt := range pkts {
		pkt.Timestamp = rtpTime
		if err := c.stream.WritePacketRTPWithNTP(c.media, pkt, now); err != nil {
			return fmt.Errorf("camsim: write %s: %w", c.Path, err)
		}
	}
	return nil
}

// handler answers RTSP requests; readers may only play known paths.
type handler Server

func (h *handler) stream(path string) (*base.Response, *gortsplib.ServerStream, error) {
	c, ok := h.cameras[pathKey(path)]
	if !ok {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	h.mu.Lock()
	stream := c.stream
	h.mu.Unlock()
	if stream == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, stream, nil
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.stream(ctx.Path)
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.stream(ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (*handler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}
