// Package whepclient is a WHEP player without a screen: it offers to
// receive, POSTs the offer, and depacketises the H.264 it gets into access
// units. Tests and the benchmark use it as any third-party player would
// use the gateway; it is built on pion like the gateway, but shares no
// code with the server side.
package whepclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Options configure a Client.
type Options struct {
	// URL is the camera's WHEP endpoint (http://host/api/v1/cameras/ID/whep).
	URL string
	// Token is sent as a bearer token; empty sends none.
	Token string
	// Video, when set, is the only video codec offered (a player without
	// H.265, say); by default pion's usual codecs are offered.
	Video *webrtc.RTPCodecCapability
	// Loopback limits ICE to the loopback interface (tests).
	Loopback bool
	// TCP limits ICE to TCP (a network that blocks UDP).
	TCP bool
	// RelayOnly asks the endpoint for its ICE servers first (OPTIONS,
	// Link headers) and reaches the gateway only through a TURN relay, as
	// a viewer behind a strict NAT would.
	RelayOnly bool
	// Queue is how many access units wait to be read before new ones are
	// dropped (default 2000).
	Queue int
	// HTTP is the client for signalling (default http.DefaultClient).
	HTTP *http.Client
}

// AccessUnit is one depacketised H.264 access unit and when it arrived.
type AccessUnit struct {
	NALUs [][]byte
	At    time.Time
	// RTPTime is the access unit's RTP timestamp (90 kHz).
	RTPTime uint32
}

// Client is one viewing session.
type Client struct {
	// PC is the peer connection (to send RTCP, read stats).
	PC *webrtc.PeerConnection
	// Posted is when the offer was sent.
	Posted time.Time
	// Response is the answer's HTTP response (body already read).
	Response *http.Response
	// Location is the session's resource URL (absolute).
	Location string

	opts   Options
	aus    chan AccessUnit
	audio  chan []byte
	tracks chan *webrtc.TrackRemote
	delay  atomic.Int64
	once   sync.Once

	trackCount atomic.Int32
	video      atomic.Pointer[webrtc.TrackRemote]

	seqMu sync.Mutex
	seq   SeqStats
	ext   int64 // highest extended sequence number seen (-1: none)
	seen  map[int64]bool
}

// SeqStats count the video packets by sequence number: what a player's
// RTP statistics would show.
type SeqStats struct {
	// Received packets (padding included); Expected from the first to
	// the highest sequence number.
	Received, Expected int64
	// Late packets arrived after a higher one: a retransmission after a
	// NACK, usually (a recovered loss).
	Late int64
	// Padding packets, and Duplicates (packets received twice: a sender
	// probing the link sends recent packets again).
	Padding, Duplicates int64
}

// Lost is the packets never received.
func (s SeqStats) Lost() int64 { return max(s.Expected-s.Received, 0) }

// Seq returns the video packets' counters so far.
func (c *Client) Seq() SeqStats {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	return c.seq
}

// count books one video packet's sequence number; false for a
// duplicate, which the caller drops.
func (c *Client) count(seq uint16, padding bool) bool {
	c.seqMu.Lock()
	defer c.seqMu.Unlock()
	if c.seen == nil {
		c.seen, c.ext = map[int64]bool{}, -1
	}
	var e int64
	if c.ext < 0 {
		e = int64(seq)
		c.seq.Expected = 1
		c.ext = e
	} else {
		// the extended number nearest the highest seen
		base := c.ext &^ 0xffff
		e = base | int64(seq)
		if e < c.ext-0x8000 {
			e += 0x10000
		} else if e > c.ext+0x8000 {
			e -= 0x10000
		}
	}
	if c.seen[e] {
		c.seq.Duplicates++
		return false
	}
	c.seen[e] = true
	if len(c.seen) > 4096 {
		for k := range c.seen {
			if k < c.ext-2048 {
				delete(c.seen, k)
			}
		}
	}
	c.seq.Received++
	if padding {
		c.seq.Padding++
	}
	switch {
	case e > c.ext:
		c.seq.Expected += e - c.ext
		c.ext = e
	case e < c.ext:
		c.seq.Late++
	}
	return true
}

// StatusError is a refused offer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("whep: offer refused: %d %s", e.Code, strings.TrimSpace(e.Body))
}

// Dial connects. A refused offer returns a *StatusError and a Client whose
// Response shows the headers.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Queue <= 0 {
		opts.Queue = 2000
	}
	if opts.HTTP == nil {
		opts.HTTP = http.DefaultClient
	}
	pc, err := newPeerConnection(ctx, opts)
	if err != nil {
		return nil, err
	}
	c := &Client{PC: pc, opts: opts, aus: make(chan AccessUnit, opts.Queue), audio: make(chan []byte, opts.Queue),
		tracks: make(chan *webrtc.TrackRemote, 2)}
	// From here on a failure still returns the Client: a caller testing a
	// refusal reads it from c.Response.
	fail := func(err error) (*Client, error) {
		_ = pc.Close()
		return c, err
	}
	if err := c.receive(); err != nil {
		return fail(err)
	}
	offer, err := c.gatherOffer(ctx)
	if err != nil {
		return fail(err)
	}
	answer, err := c.post(ctx, offer)
	if err != nil {
		return fail(err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fail(fmt.Errorf("whep: answer refused: %w", err))
	}
	return c, nil
}

// newPeerConnection makes the peer connection the options ask for: the
// codecs offered, the ICE networks and, for RelayOnly, the endpoint's own
// ICE servers with relay as the only transport.
func newPeerConnection(ctx context.Context, opts Options) (*webrtc.PeerConnection, error) {
	me, err := mediaEngine(opts)
	if err != nil {
		return nil, err
	}
	se := settingEngine(opts)
	var pcCfg webrtc.Configuration
	if opts.RelayOnly {
		servers, err := fetchICEServers(ctx, opts)
		if err != nil {
			return nil, err
		}
		pcCfg = webrtc.Configuration{ICEServers: servers, ICETransportPolicy: webrtc.ICETransportPolicyRelay}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(pcCfg)
}

// mediaEngine registers the codecs to offer: pion's defaults, or only
// opts.Video (with PCMU audio) to act as a player that lacks the others.
func mediaEngine(opts Options) (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	if opts.Video == nil {
		if err := me.RegisterDefaultCodecs(); err != nil {
			return nil, err
		}
		return me, nil
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: *opts.Video, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, err
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, PayloadType: 0}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	return me, nil
}

// settingEngine limits ICE to IPv4 over UDP (or TCP) and, for tests, to
// the loopback interface. mDNS is off: candidates carry plain addresses,
// which the gateway can reach without a resolver.
func settingEngine(opts Options) webrtc.SettingEngine {
	se := webrtc.SettingEngine{}
	// As browsers do: a lost DTLS flight is retried after 200 ms, not 1 s.
	se.SetDTLSRetransmissionInterval(200 * time.Millisecond)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	network := webrtc.NetworkTypeUDP4
	if opts.TCP {
		network = webrtc.NetworkTypeTCP4
	}
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	if opts.Loopback {
		se.SetIncludeLoopbackCandidate(true)
		se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	}
	return se
}

// receive asks for one video and one audio track, receive-only, and
// starts reading each track the gateway sends: video is depacketised,
// audio payloads are passed on as they are.
func (c *Client) receive() error {
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := c.PC.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	c.PC.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		c.trackCount.Add(1)
		// Read the sender's RTCP, as a player must: the interceptors see
		// its sender reports only then, and receiver reports without them
		// carry no round trip.
		go func() {
			for {
				if _, _, err := r.ReadRTCP(); err != nil {
					return
				}
			}
		}()
		select {
		case c.tracks <- tr:
		default:
		}
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			c.video.Store(tr)
			go c.depacketise(tr)
		} else {
			go c.readAudio(tr)
		}
	})
	return nil
}

// readAudio passes on each audio packet's payload until the track ends,
// dropping those nobody reads in time rather than stalling the track.
func (c *Client) readAudio(tr *webrtc.TrackRemote) {
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		select {
		case c.audio <- pkt.Payload:
		default:
		}
	}
}

// gatherOffer makes the offer and waits for ICE gathering to complete:
// the client does not trickle, so the one offer it posts must hold every
// candidate.
func (c *Client) gatherOffer(ctx context.Context) (string, error) {
	offer, err := c.PC.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(c.PC)
	if err := c.PC.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return c.PC.LocalDescription().SDP, nil
}

// post sends the offer and returns the answer. It records when the offer
// was sent, the response and the session's Location; an answer other than
// 201 Created is a *StatusError.
func (c *Client) post(ctx context.Context, offer string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", c.opts.URL, strings.NewReader(offer))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	c.Posted = time.Now()
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	c.Response = resp
	if resp.StatusCode != http.StatusCreated {
		return "", &StatusError{Code: resp.StatusCode, Body: string(body)}
	}
	// Location may be relative to the endpoint.
	loc, err := req.URL.Parse(resp.Header.Get("Location"))
	if err != nil {
		return "", fmt.Errorf("whep: bad Location: %w", err)
	}
	c.Location = loc.String()
	return string(body), nil
}

// decoder depacketises one video codec.
type decoder interface {
	Decode(*rtp.Packet) ([][]byte, error)
}

// fetchICEServers asks the endpoint (OPTIONS) for its ICE servers.
func fetchICEServers(ctx context.Context, opts Options) ([]webrtc.ICEServer, error) {
	req, err := http.NewRequestWithContext(ctx, "OPTIONS", opts.URL, nil)
	if err != nil {
		return nil, err
	}
	if opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+opts.Token)
	}
	resp, err := opts.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	servers := ParseLinks(resp.Header.Values("Link"))
	if len(servers) == 0 {
		return nil, errors.New("whep: the endpoint offers no ICE servers")
	}
	return servers, nil
}

// ParseLinks reads WHEP Link headers (rel="ice-server") into ICE servers.
func ParseLinks(values []string) []webrtc.ICEServer {
	var out []webrtc.ICEServer
	for _, v := range values {
		for link := range strings.SplitSeq(v, ",") {
			parts := strings.Split(link, ";")
			url := strings.Trim(strings.TrimSpace(parts[0]), "<>")
			s := webrtc.ICEServer{URLs: []string{url}}
			ice := false
			for _, p := range parts[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				val = strings.Trim(val, `"`)
				switch k {
				case "rel":
					ice = val == "ice-server"
				case "username":
					s.Username = val
				case "credential":
					s.Credential = val
				}
			}
			if ice && url != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (c *Client) depacketise(tr *webrtc.TrackRemote) {
	defer close(c.aus)
	var dec decoder
	if strings.EqualFold(tr.Codec().MimeType, webrtc.MimeTypeH265) {
		d := &rtph265.Decoder{}
		if err := d.Init(); err != nil {
			return
		}
		dec = d
	} else {
		d := &rtph264.Decoder{}
		if err := d.Init(); err != nil {
			return
		}
		dec = d
	}
	for {
		if d := time.Duration(c.delay.Load()); d > 0 {
			time.Sleep(d)
		}
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if !c.count(pkt.SequenceNumber, len(pkt.Payload) == 0) || len(pkt.Payload) == 0 {
			continue // a duplicate, or padding
		}
		au, err := dec.Decode(pkt)
		if err != nil {
			continue
		}
		select {
		case c.aus <- AccessUnit{NALUs: au, At: time.Now(), RTPTime: pkt.Timestamp}:
		default:
		}
	}
}

// Audio delivers the payload of each audio RTP packet.
func (c *Client) Audio() <-chan []byte { return c.audio }

// AccessUnits delivers the video (H.264 or H.265 access units); it closes
// when the track ends.
func (c *Client) AccessUnits() <-chan AccessUnit { return c.aus }

// SetReadDelay makes the player slow: it sleeps d before reading each
// packet (its buffers then overflow, as a congested viewer's would).
func (c *Client) SetReadDelay(d time.Duration) { c.delay.Store(int64(d)) }

// VideoTrack waits for the video track.
func (c *Client) VideoTrack(ctx context.Context) (*webrtc.TrackRemote, error) {
	for {
		select {
		case tr := <-c.tracks:
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				return tr, nil
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// HangUp sends DELETE for the session and returns the status code.
func (c *Client) HangUp(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "DELETE", c.Location, nil)
	if err != nil {
		return 0, err
	}
	if c.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.opts.Token)
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// Close ends the peer connection (without DELETE).
func (c *Client) Close() error {
	var err error
	c.once.Do(func() { err = c.PC.Close() })
	return err
}

// RequestKeyframe asks the gateway for a keyframe (RTCP PLI), as a
// player does when it cannot decode (a keyframe's parameter sets were
// lost).
func (c *Client) RequestKeyframe() error {
	tr := c.video.Load()
	if tr == nil {
		return errors.New("whep: no video track yet")
	}
	return c.PC.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
}

// TrackCount is how many tracks the gateway has sent (one video and at
// most one audio, unless it renegotiated).
func (c *Client) TrackCount() int { return int(c.trackCount.Load()) }

// IsKeyframe: the access unit is an H.264 IDR with its SPS and PPS.
func IsKeyframe(nalus [][]byte) bool {
	sps, pps, idr := paramSets(nalus)
	return sps && pps && idr
}

// paramSets says which of SPS, PPS and an IDR picture an H.264 access
// unit holds.
func paramSets(nalus [][]byte) (sps, pps, idr bool) {
	for _, n := range nalus {
		if len(n) == 0 {
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			sps = true
		case h264.NALUTypePPS:
			pps = true
		case h264.NALUTypeIDR:
			idr = true
		}
	}
	return sps, pps, idr
}

// Keyframe reads until an IDR access unit that carries its SPS and PPS
// (what a decoder can start from). An IDR without them is an error.
func (c *Client) Keyframe(ctx context.Context) (AccessUnit, error) {
	for {
		select {
		case au, ok := <-c.aus:
			if !ok {
				return AccessUnit{}, errors.New("whep: the video track ended")
			}
			sps, pps, idr := paramSets(au.NALUs)
			if idr && sps && pps {
				return au, nil
			}
			if idr {
				return au, fmt.Errorf("whep: IDR without parameter sets (sps=%v pps=%v)", sps, pps)
			}
		case <-ctx.Done():
			return AccessUnit{}, fmt.Errorf("whep: no complete keyframe: %w", ctx.Err())
		}
	}
}
