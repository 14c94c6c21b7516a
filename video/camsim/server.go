package camsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
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
	// Address is the RTSP (TCP) listen address, e.g. "127.0.0.1:0". Readers
	// and publishers can always use the TCP (interleaved) transport.
	Address string
	// UDPRTPAddress and UDPRTCPAddress enable the UDP transport as well when
	// both are set. RTSP needs an even RTP port and the next port for RTCP,
	// e.g. ":8000" and ":8001"; port 0 in both (e.g. "127.0.0.1:0") picks a
	// free pair. Empty means TCP transport only.
	UDPRTPAddress  string
	UDPRTCPAddress string
	Cameras        []Camera
	// Push lets publishers ANNOUNCE and RECORD a live stream on any path
	// that no camera serves, and readers play it on the same path while
	// the publisher is connected (see the package doc).
	Push bool
	// Now is the clock written into the send-time stamps; time.Now if nil.
	Now func() time.Time
}

// Server is an RTSP server that serves each camera's clip in a loop and,
// with Options.Push, re-serves live pushes.
type Server struct {
	opts    Options
	rtsp    *gortsplib.Server
	cameras map[string]*camera

	mu     sync.Mutex // guards ln, pushes, and each camera's stream until Start returns
	ln     net.Listener
	pushes map[string]*push // by pathKey

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
	if opts.UDPRTPAddress != "" {
		rtp0, err := isPortZero(opts.UDPRTPAddress)
		if err != nil {
			return nil, fmt.Errorf("camsim: new server: UDP RTP address: %w", err)
		}
		rtcp0, err := isPortZero(opts.UDPRTCPAddress)
		if err != nil {
			return nil, fmt.Errorf("camsim: new server: UDP RTCP address: %w", err)
		}
		if rtp0 != rtcp0 {
			return nil, errors.New("camsim: new server: set port 0 in both UDP addresses or in neither")
		}
	}
	if len(opts.Cameras) == 0 && !opts.Push {
		return nil, errors.New("camsim: new server: no cameras and pushes disabled")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, cameras: make(map[string]*camera), pushes: make(map[string]*push)}
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

func isPortZero(address string) (bool, error) {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return false, err
	}
	return port == "0", nil
}

// listenUDPPair listens on a free even port of rtpHost and the next port of
// rtcpHost, as RTSP over UDP needs. The kernel picks the first port; an odd
// one, or a taken neighbour, means another try.
func listenUDPPair(rtpHost, rtcpHost string) (rtpConn, rtcpConn net.PacketConn, err error) {
	for range 100 {
		rtpConn, err = net.ListenPacket("udp", net.JoinHostPort(rtpHost, "0"))
		if err != nil {
			return nil, nil, err
		}
		port := rtpConn.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 0 {
			rtcpConn, err = net.ListenPacket("udp", net.JoinHostPort(rtcpHost, strconv.Itoa(port+1)))
			if err == nil {
				return rtpConn, rtcpConn, nil
			}
		}
		rtpConn.Close()
	}
	return nil, nil, errors.New("no free pair of UDP ports in 100 tries")
}

// Start listens and starts every camera. The cameras stop when ctx is done
// or at Close; Close must be called in either case.
func (s *Server) Start(ctx context.Context) error {
	udpRTP, udpRTCP := s.opts.UDPRTPAddress, s.opts.UDPRTCPAddress
	// gortsplib cannot listen on port 0 for UDP (it checks that the RTP port
	// is even and RTCP the next one before listening), so a free pair is
	// opened here and handed over through ListenPacket: no other process can
	// take the ports in between.
	opened := make(map[string]net.PacketConn)
	defer func() {
		for _, pc := range opened { // left over only if the server failed to start
			pc.Close()
		}
		clear(opened)
	}()
	if udpRTP != "" {
		if zero, _ := isPortZero(udpRTP); zero {
			rtpHost, _, _ := net.SplitHostPort(udpRTP)
			rtcpHost, _, _ := net.SplitHostPort(udpRTCP)
			rtpConn, rtcpConn, err := listenUDPPair(rtpHost, rtcpHost)
			if err != nil {
				return fmt.Errorf("camsim: start RTSP server: %w", err)
			}
			udpRTP, udpRTCP = rtpConn.LocalAddr().String(), rtcpConn.LocalAddr().String()
			opened[udpRTP], opened[udpRTCP] = rtpConn, rtcpConn
		}
	}
	s.rtsp = &gortsplib.Server{
		Handler:        (*handler)(s),
		RTSPAddress:    s.opts.Address,
		UDPRTPAddress:  udpRTP,
		UDPRTCPAddress: udpRTCP,
		Listen: func(network, address string) (net.Listener, error) {
			ln, err := net.Listen(network, address)
			s.mu.Lock()
			s.ln = ln
			s.mu.Unlock()
			return ln, err
		},
		ListenPacket: func(network, address string) (net.PacketConn, error) {
			if pc, ok := opened[address]; ok { // only called within Start
				delete(opened, address)
				return pc, nil
			}
			return net.ListenPacket(network, address)
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

// Close stops the cameras, waits for them and closes the server, every
// reader's and publisher's connection and the pushed streams. Later calls do
// nothing.
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

// handler answers RTSP requests; readers may only play a camera's path or
// a path with a publisher.
type handler Server

func (h *handler) stream(path string) (*base.Response, *gortsplib.ServerStream, error) {
	key := pathKey(path)
	h.mu.Lock()
	var stream *gortsplib.ServerStream
	c, isCamera := h.cameras[key]
	if isCamera {
		stream = c.stream
	} else if p, ok := h.pushes[key]; ok {
		stream = p.stream
	}
	h.mu.Unlock()
	switch {
	case stream != nil:
		return &base.Response{StatusCode: base.StatusOK}, stream, nil
	case isCamera:
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	default:
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.stream(ctx.Path)
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		// A publisher sets up the medias it announced: OnAnnounce accepted it.
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	return h.stream(ctx.Path)
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (*handler) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}
