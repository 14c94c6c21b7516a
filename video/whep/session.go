package whep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// rtpPayloadMax keeps packets within WebRTC's 1200-byte MTU.
const rtpPayloadMax = 1200 - 12

// offerError carries the HTTP status for a refused offer.
type offerError struct {
	code int
	err  error
}

func (e *offerError) Error() string { return e.err.Error() }
func (e *offerError) Unwrap() error { return e.err }

func refuse(code int, format string, args ...any) error {
	return &offerError{code: code, err: fmt.Errorf(format, args...)}
}

// estimator is what a session reads of its bandwidth estimator.
type estimator interface {
	GetTargetBitrate() int
	GetStats() map[string]any
}

// feed is one of the camera's streams as a session holds it.
type feed struct {
	stream  Stream
	h       *hub.Hub
	release func()
	v       *hub.Viewer // nil while not subscribed
}

func (f *feed) close() {
	if f == nil {
		return
	}
	if f.v != nil {
		f.v.Close()
		f.v = nil
	}
	if f.release != nil {
		f.release()
		f.release = nil
	}
}

type session struct {
	s                   *Server
	id, etag            string
	camera, who, remote string
	start               time.Time
	pc                  *webrtc.PeerConnection
	pref                Preference
	// main and sub are the streams the session holds (sub nil when the
	// camera has none or the session does not need it); startOn is the
	// one it starts on. Owned by run once it starts.
	main, sub    *feed
	startOn      Stream
	media        hub.Media
	video, audio *webrtc.TrackLocalStaticRTP
	remoteUfrag  string
	bwe          estimator
	// seq numbers the video packets of every stream and the probes'
	// padding, so the player sees one sequence across switches.
	seq  uint16
	pace pacer
	// padding counts the probes' bytes.
	padding uint64
	paced   bool // the first keyframe has gone out
	// firstAt is when the first keyframe went out.
	firstAt time.Time
	// link is what the player's receiver reports say; videoSSRC names
	// the reports of the video.
	link      linkReports
	videoSSRC uint32
	// playout asks a far viewer's player for a playout delay that
	// covers a keyframe's transfer (playout.go); reach is the viewer's,
	// from the ICE round trip at connect.
	playout    playoutDelay
	reach      reach
	connectRTT time.Duration // the ICE checks' round trip at connect
	// lastTS is the RTP timestamp of the last video frame sent.
	lastTS uint32
	stream atomic.Value
	curHub atomic.Value // *hub.Hub the session plays now

	bytes atomic.Uint64
	// sent measures what the session sent over the last second (media
	// and probes); ceiling, float64 bits, is the most the estimate may
	// say (0: no cap yet). Both are the session goroutine's to write.
	sent      sentRate
	ceiling   atomic.Uint64
	keyReq    chan struct{}
	connected chan struct{}
	connOnce  sync.Once
	done      chan struct{}
	stopOnce  sync.Once
	mu        sync.Mutex
	reason    string
	end       time.Time
}

// offer runs the answering side of a WHEP POST. On success the session is
// registered and running.
func (s *Server) offer(ctx context.Context, camera, who, remote string, body []byte, pref Preference) (*session, string, error) {
	info, err := parseOffer(body)
	if err != nil {
		s.metrics.refused.WithLabelValues("bad_offer").Inc()
		return nil, "", refuse(400, "%w", err)
	}
	if err := s.admit(camera, who); errors.Is(err, errViewerLimit) {
		// The viewer's own limit: retrying will not help until they end
		// a session, so 429 and not 503.
		s.metrics.refused.WithLabelValues("viewer_limit").Inc()
		return nil, "", refuse(429, "%w", err)
	} else if err != nil {
		s.metrics.refused.WithLabelValues("limit").Inc()
		return nil, "", refuse(503, "%w", err)
	}
	admitted := true
	defer func() {
		if admitted {
			s.unadmit(camera, who)
		}
	}()
	first := StreamMain
	if pref.Quality == QualitySub {
		first = StreamSub
	}
	h, release, err := s.cams.Acquire(ctx, camera, first)
	if errors.Is(err, ErrNoSubStream) {
		first = StreamMain
		h, release, err = s.cams.Acquire(ctx, camera, first)
	}
	if errors.Is(err, ErrUnknownCamera) {
		s.metrics.refused.WithLabelValues("unknown_camera").Inc()
		return nil, "", refuse(404, "camera %q: %w", camera, err)
	}
	if errors.Is(err, ErrCameraDown) {
		s.metrics.refused.WithLabelValues("camera_down").Inc()
		return nil, "", refuse(503, "camera %q: %w", camera, err)
	}
	if err != nil {
		s.metrics.refused.WithLabelValues("camera").Inc()
		return nil, "", refuse(503, "camera %q: %w", camera, err)
	}
	held := &feed{stream: first, h: h, release: release}
	var other *feed
	if first == StreamMain {
		// The sub stream, if any, to start on when main's cache is too
		// long for the link, and for auto to move to. Its failure is no
		// reason to refuse the viewer.
		if sh, srel, err := s.cams.Acquire(ctx, camera, StreamSub); err == nil {
			other = &feed{stream: StreamSub, h: sh, release: srel}
		}
	}
	ok := false
	defer func() {
		if !ok {
			held.close()
			other.close()
		}
	}()
	// An on-demand camera is connecting now: wait for its first stream.
	timer := time.NewTimer(s.cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-h.MediaKnown():
	case <-ctx.Done():
		return nil, "", refuse(503, "camera %q: %w", camera, ctx.Err())
	case <-timer.C:
		s.metrics.refused.WithLabelValues("camera_not_started").Inc()
		why := ""
		if r, ok := s.cams.(interface{ Reason(camera string) string }); ok {
			if reason := r.Reason(camera); reason != "" {
				why = ": " + reason
			}
		}
		return nil, "", refuse(504, "camera %q did not start streaming within %s%s", camera, s.cfg.StartTimeout, why)
	}
	media, _ := h.Media()
	ss0 := &session{pref: pref}
	if first == StreamMain {
		ss0.main, ss0.sub = held, other
	} else {
		ss0.sub = held
	}
	ss0.startOn = ss0.chooseStart(initialEstimate, reachFar)
	if ss0.startOn == StreamSub && first == StreamMain {
		media, _ = ss0.sub.h.Media()
	}
	var vcap webrtc.RTPCodecCapability
	switch media.Video {
	case hub.CodecH264:
		vcap = capH264
	case hub.CodecH265:
		vcap = capH265
	default:
		return nil, "", refuse(503, "camera %q sends video the gateway cannot relay (%q)", camera, media.Video)
	}
	if !info.video[media.Video] {
		s.metrics.refused.WithLabelValues("codec").Inc()
		return nil, "", refuse(406, "camera %q sends %s video and the player offered no %s decoder", camera, media.Video, media.Video)
	}
	var acap *webrtc.RTPCodecCapability
	switch {
	case media.Audio == hub.CodecPCMU && info.audio["PCMU"]:
		acap = &capPCMU
	case media.Audio == hub.CodecPCMA && info.audio["PCMA"]:
		acap = &capPCMA
	case media.Audio == hub.CodecOpus && info.audio["OPUS"]:
		acap = &capOpus
	}

	now := time.Now()
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{ICEServers: iceServers(s.cfg.ICEServers, who, now, true),
		Certificates: []webrtc.Certificate{s.cert}})
	if err != nil {
		return nil, "", refuse(500, "new peer connection: %w", err)
	}
	ss := ss0
	ss.s, ss.id, ss.camera, ss.who, ss.remote, ss.start, ss.pc = s, newID(), camera, who, remote, now, pc
	ss.media, ss.remoteUfrag = media, info.ufrag
	ss.keyReq, ss.connected, ss.done = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	ss.seq = uint16(rand.Uint32())
	ss.stream.Store(ss.startOn)
	if e, ok := s.estimators.LoadAndDelete(pc.ID()); ok {
		ss.bwe, _ = e.(estimator)
	}
	ss.etag = `"` + newID()[:16] + `"`
	answer, err := ss.negotiate(string(body), vcap, acap)
	if err != nil {
		_ = pc.Close()
		return nil, "", err
	}
	// Who watched inside a placement must be on record before anyone
	// watches: a session whose start cannot be audited is not started.
	if s.cfg.Audit != nil {
		if err := s.cfg.Audit(ss.record()); err != nil {
			_ = pc.Close()
			s.metrics.refused.WithLabelValues("audit").Inc()
			s.log.Error("video: viewing refused: the audit log cannot record it", "camera", camera, "who", who, "err", err)
			return nil, "", refuse(503, "%w", errAuditUnavailable)
		}
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = pc.Close()
		if s.cfg.Audit != nil {
			// Its start is on record: so is its end.
			ss.mu.Lock()
			ss.end, ss.reason = time.Now(), errShuttingDown.Error()
			ss.mu.Unlock()
			_ = s.cfg.Audit(ss.record())
		}
		return nil, "", refuse(503, "%w", errShuttingDown)
	}
	s.sessions[ss.id] = ss
	s.wg.Add(1)
	s.mu.Unlock()
	ok, admitted = true, false // the session owns the slot and the camera now
	s.metrics.started.Inc()
	s.metrics.active.Inc()
	go ss.run()
	return ss, answer, nil
}

// negotiate adds the tracks, answers and gathers the gateway's candidates.
func (ss *session) negotiate(offer string, vcap webrtc.RTPCodecCapability, acap *webrtc.RTPCodecCapability) (string, error) {
	pc := ss.pc
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			ss.connOnce.Do(func() { close(ss.connected) })
		case webrtc.PeerConnectionStateFailed:
			ss.stop("ICE or DTLS failed")
		case webrtc.PeerConnectionStateClosed:
			ss.stop("peer connection closed")
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", refuse(400, "offer refused: %w", err)
	}
	stream := "shelterwatch-" + ss.camera
	var err error
	if ss.video, err = webrtc.NewTrackLocalStaticRTP(vcap, "video", stream); err != nil {
		return "", refuse(500, "video track: %w", err)
	}
	vs, err := pc.AddTrack(ss.video)
	if err != nil {
		return "", refuse(406, "video track: %w", err)
	}
	params := vs.GetParameters()
	if enc := params.Encodings; len(enc) > 0 {
		ss.videoSSRC = uint32(enc[0].SSRC)
	}
	for _, x := range params.HeaderExtensions {
		if x.URI == playoutDelayURI && x.ID > 0 && x.ID < 15 {
			ss.playout.id = uint8(x.ID)
		}
	}
	var as *webrtc.RTPSender
	if acap != nil {
		if ss.audio, err = webrtc.NewTrackLocalStaticRTP(*acap, "audio", stream); err != nil {
			return "", refuse(500, "audio track: %w", err)
		}
		if as, err = pc.AddTrack(ss.audio); err != nil {
			ss.audio = nil // play video alone rather than refuse
			as = nil
		}
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", refuse(400, "cannot answer this offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return "", refuse(500, "set answer: %w", err)
	}
	select {
	case <-gathered:
	case <-time.After(5 * time.Second):
		// A slow STUN or TURN server: answer with what there is; the
		// host candidates on the shared port are always there.
	}
	ss.s.wg.Add(1)
	go ss.readRTCP(vs, true)
	if as != nil {
		ss.s.wg.Add(1)
		go ss.readRTCP(as, false)
	}
	return pc.LocalDescription().SDP, nil
}

// readRTCP drains a sender's RTCP (the interceptors need it read) and
// passes keyframe requests on.
func (ss *session) readRTCP(sender *webrtc.RTPSender, video bool) {
	defer ss.s.wg.Done()
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		if !video {
			continue
		}
		for _, p := range pkts {
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				for _, r := range p.Reports {
					if r.SSRC == ss.videoSSRC {
						ss.link.add(r, time.Now())
					}
				}
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				ss.s.metrics.keyRequests.Inc()
				select {
				case ss.keyReq <- struct{}{}:
				default:
				}
			}
		}
	}
}

// stop ends the session (once); run does the cleanup.
func (ss *session) stop(reason string) {
	ss.stopOnce.Do(func() {
		ss.mu.Lock()
		ss.reason = reason
		ss.mu.Unlock()
		close(ss.done)
	})
}

func (ss *session) record() Record {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return Record{ID: ss.id, Camera: ss.camera, Who: ss.who, Remote: ss.remote, Start: ss.start, End: ss.end,
		Bytes: ss.bytes.Load(), Reason: ss.reason}
}

// encoder packetises access units for one viewer.
type encoder interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}

func (ss *session) newEncoder() (encoder, error) {
	seq := uint16(rand.Uint32())
	if ss.media.Video == hub.CodecH265 {
		e := &rtph265.Encoder{PayloadType: 96, PayloadMaxSize: rtpPayloadMax, InitialSequenceNumber: &seq}
		return e, e.Init()
	}
	e := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: rtpPayloadMax, PacketizationMode: 1, InitialSequenceNumber: &seq}
	return e, e.Init()
}

// chooseStart picks the stream to start on from what the hubs hold now.
func (ss *session) chooseStart(estimate float64, r reach) Stream {
	info := func(f *feed) streamInfo {
		if f == nil {
			return streamInfo{}
		}
		_, known := f.h.Media()
		return streamInfo{ok: known, cacheBytes: f.h.CacheBytes(), rate: f.h.Bitrate()}
	}
	if ss.main == nil {
		return StreamSub
	}
	return chooseStart(ss.pref, info(ss.main), info(ss.sub), estimate, r)
}

func (ss *session) feed(s Stream) *feed {
	if s == StreamSub {
		return ss.sub
	}
	return ss.main
}

// estimate is the viewer's bandwidth estimate in bit/s: GCC's, held
// under the ceiling that what the session sent sets (sentRate).
func (ss *session) estimate() float64 {
	if ss.bwe == nil {
		return initialEstimate
	}
	est := float64(max(ss.bwe.GetTargetBitrate(), minEstimate))
	if c := math.Float64frombits(ss.ceiling.Load()); c > 0 {
		est = min(est, c)
	}
	return est
}

// paceEstimate is the estimate the session paces and sizes catch-ups
// by: a viewer on the gateway's own network is taken to have at least
// lanEstimate. GCC starts at initialEstimate and grows only as fast as
// the stream lets it see more, so pacing a LAN viewer by it sent a 10 s
// GOP cache in about 8 s (1.5 × 3 Mbit/s against a 2 Mbit/s stream) and
// kept that viewer seconds behind the camera. For lanGrace after the
// first keyframe the session keeps GCC's pace: Chromium presents its
// first picture only once it has decoded what arrived with it, and a
// cache arriving at LAN speed behind the keyframe put that off by about
// 30 ms.
func (ss *session) paceEstimate() float64 {
	est := ss.estimate()
	if ss.reach == reachLAN && (!ss.paced || time.Since(ss.firstAt) >= lanGrace) {
		est = max(est, lanEstimate)
	}
	return est
}

// run is the session's media goroutine: it waits for the peer, then relays
// the camera until the session stops.
func (ss *session) run() {
	defer ss.cleanup()
	timer := time.NewTimer(ss.s.cfg.ConnectTimeout)
	select {
	case <-ss.connected:
		timer.Stop()
	case <-ss.done:
		timer.Stop()
		return
	case <-timer.C:
		ss.stop("the viewer's peer never connected")
		return
	}
	enc, err := ss.newEncoder()
	if err != nil {
		ss.stop("packetiser: " + err.Error())
		return
	}
	// The choice made at the offer is made again now that the peer is
	// here: the caches have moved on meanwhile, and the round trip of the
	// ICE checks says whether the viewer is on the gateway's network.
	ss.connectRTT = ss.iceRTT()
	r := reachOf(ss.connectRTT)
	ss.reach = r
	start := ss.chooseStart(ss.paceEstimate(), r)
	if m, _ := ss.feed(start).h.Media(); m.Video != ss.media.Video {
		start = ss.startOn
	}
	cur := ss.feed(start)
	ss.stream.Store(start)
	ss.curHub.Store(cur.h)
	cur.v = cur.h.Subscribe()
	if start == StreamSub && ss.pref.Quality == QualitySub {
		ss.main.close() // never used: nil-safe
		ss.main = nil
	}
	ad := newAdapter(ss.pref, start, ss.main != nil && ss.sub != nil, r, time.Now())
	var next *feed
	catchup := cur.v.Backlog
	vclock := newClock(90000)
	aclock := newClock(audioRate(ss.media.Audio))
	var aseq = uint16(rand.Uint32())
	var lastResync time.Time
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var probe *time.Ticker
	var probeC <-chan time.Time
	var probeSent int // media bytes sent since the last probe tick
	var probeStart time.Time
	endProbe := func() {
		if probe != nil {
			probe.Stop()
			probe, probeC = nil, nil
		}
	}
	defer endProbe()
	defer func() {
		ss.main.close()
		ss.sub.close()
	}()
	var nextC <-chan *hub.Frame
	for {
		select {
		case <-ss.done:
			return
		case <-ss.keyReq:
			// Answered from the GOP cache when the link can take the
			// replay within the budget; otherwise the player waits for
			// the camera's next keyframe (or auto moves it to the sub
			// stream): a replay the link cannot carry is lost in its
			// queue, and the player asks again.
			if time.Since(lastResync) >= time.Second && fits(cur.h.CacheBytes(), cur.h.Bitrate(), ss.paceEstimate()) {
				lastResync = time.Now()
				catchup = cur.v.Resync()
				ss.s.metrics.resyncs.Inc()
			}
		case now := <-tick.C:
			if c := ss.sent.add(now, ss.bytes.Load()+ss.padding); c > 0 {
				ss.ceiling.Store(math.Float64bits(c))
			}
			mainRate := 0.0
			if ss.main != nil {
				mainRate = ss.main.h.Bitrate()
			}
			sig := ss.link.take(mainRate, ss.estimate())
			if o := ss.s.linkOverride.Load(); o != 0 {
				sig.report, sig.congested, sig.heavy = true, o == 1, o == 1
			}
			switch ad.step(now, sig) {
			case actSwitchMain, actSwitchSub:
				to := ss.main
				if cur == ss.main {
					to = ss.sub
				}
				endProbe()
				if m, known := to.h.Media(); !known || m.Video != ss.media.Video {
					ad.abandon(now)
					ss.s.metrics.switches.WithLabelValues(string(to.stream), "abandoned").Inc()
					continue
				}
				// Down: the sub stream's cache if the link can take it
				// (the move is urgent); up: the next keyframe, no burst.
				if to.stream == StreamSub && fits(to.h.CacheBytes(), to.h.Bitrate(), ss.paceEstimate()) {
					to.v = to.h.Subscribe()
				} else {
					to.v = to.h.SubscribeAtKey()
				}
				next, nextC = to, to.v.C
			case actProbe:
				probe = time.NewTicker(20 * time.Millisecond)
				probeC, probeSent, probeStart = probe.C, 0, now
				ss.s.metrics.probes.Inc()
			case actEndProb:
				endProbe()
			}
		case now := <-probeC:
			if ss.overuse() {
				// The estimator saw the queue grow: stop before the link
				// drops the sub stream's own packets, not a report later.
				endProbe()
				ad.abortProbe(now)
				ss.s.metrics.probesAborted.Inc()
				continue
			}
			// The probe ramps up over probeRamp, so that a link that
			// cannot carry it shows a growing delay before it drops.
			ramp := min(1, float64(now.Sub(probeStart))/float64(probeRamp))
			want := int(ramp * probeRate(ss.main.h.Bitrate()) / 8 * 0.02)
			ss.probe(want - probeSent)
			probeSent = 0
		case f, ok := <-nextC:
			if !ok {
				nextC, next = nil, nil
				ad.abandon(time.Now())
				continue
			}
			if f.Audio || !f.Key {
				continue
			}
			// The new stream's keyframe: switch here.
			old := cur
			old.v.Close()
			old.v = nil
			cur, next, nextC = next, nil, nil
			catchup = cur.v.Backlog - 1
			if catchup < 0 {
				catchup = 0
			}
			ad.switched(cur.stream)
			ss.stream.Store(cur.stream)
			ss.curHub.Store(cur.h)
			ss.s.metrics.switches.WithLabelValues(string(cur.stream), "done").Inc()
			if ad.fixed && cur.stream == StreamMain {
				ss.sub.close() // a main session that started on sub needs it no more
				ss.sub = nil
			}
			vclock.rebase()
			if err := ss.writeVideo(enc, f, vclock, false); errors.Is(err, io.ErrClosedPipe) {
				ss.stop("peer connection closed")
				return
			}
		case f, ok := <-cur.v.C:
			if !ok {
				ss.stop("camera removed")
				return
			}
			var err error
			if f.Audio {
				if ss.audio == nil || cur.stream != ss.startOn && !ss.sameAudio(cur) {
					continue
				}
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: aclock.next(f.PTS, false, time.Now())},
					Payload: f.NALUs[0]}
				aseq++
				err = ss.audio.WriteRTP(pkt)
				ss.bytes.Add(uint64(12 + len(pkt.Payload)))
			} else {
				if catchup == 0 && !f.Received.IsZero() && time.Since(f.Received) > maxLag &&
					time.Since(lastResync) >= maxLag {
					// This session fell behind (the gateway was starved of
					// CPU, or the link): jump to the newest keyframe rather
					// than show the supervisor ever older pictures.
					lastResync = time.Now()
					ss.s.metrics.lagResyncs.Inc()
					if n := cur.v.Resync(); n > 0 {
						catchup = n
						continue
					}
				}
				err = ss.writeVideo(enc, f, vclock, catchup > 0)
				probeSent += f.Size()
				if catchup > 0 {
					catchup--
				}
			}
			if errors.Is(err, io.ErrClosedPipe) {
				ss.stop("peer connection closed")
				return
			}
		}
	}
}

// overuse: the bandwidth estimator's delay detector sees the link's queue
// growing now.
func (ss *session) overuse() bool {
	if ss.bwe == nil {
		return false
	}
	u, _ := ss.bwe.GetStats()["usage"].(string)
	return u == "overuse"
}

// iceRTT is the round trip of the viewer's selected candidate pair, from
// the ICE checks (0: unknown).
//
// It asks the ICE transport for its selected pair, not the peer
// connection's GetStats, which reads a field pion's own close writes
// without a lock (a data race when the peer goes away meanwhile).
func (ss *session) iceRTT() time.Duration {
	sctp := ss.pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return 0
	}
	p, ok := sctp.Transport().ICETransport().GetSelectedCandidatePairStats()
	if !ok || p.CurrentRoundTripTime <= 0 {
		return 0
	}
	return time.Duration(p.CurrentRoundTripTime * float64(time.Second))
}

// curRate is the bitrate of the stream the session plays now.
func (ss *session) curRate() float64 {
	if h, ok := ss.curHub.Load().(*hub.Hub); ok {
		return h.Bitrate()
	}
	return 0
}

// sameAudio: the stream's audio is the codec the session negotiated.
func (ss *session) sameAudio(f *feed) bool {
	m, _ := f.h.Media()
	return m.Audio == ss.media.Audio
}

// probe sends about n bytes of RTP padding on the video track: a probe of
// the link's capacity that the player's decoder never sees. Padding
// packets take the next sequence numbers and the last frame's timestamp
// (with timestamp 0 Chromium's receiver froze for up to 2 s during a
// probe). Sending recent packets again was tried too: players' SRTP
// replay protection drops them before any feedback, so the estimator
// counted every probe packet as lost.
func (ss *session) probe(n int) {
	const most = 255 // the padding length is one byte
	for n > 0 {
		size := min(n, most)
		payload := make([]byte, size)
		payload[size-1] = byte(size)
		p := &rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, SequenceNumber: ss.seq, Timestamp: ss.lastTS}, Payload: payload}
		ss.seq++
		if err := ss.video.WriteRTP(p); err != nil {
			return
		}
		ss.s.metrics.paddingBytes.Add(float64(size))
		ss.padding += uint64(size)
		n -= size
	}
}

func (ss *session) writeVideo(enc encoder, f *hub.Frame, c *clock, catchup bool) error {
	pkts, err := enc.Encode(f.NALUs)
	if err != nil {
		return nil // an empty or odd access unit: skip it
	}
	ts := c.next(f.PTS, catchup, time.Now())
	first := !ss.paced && f.Key
	if first {
		// The first picture goes out at once.
		ss.paced = true
		ss.firstAt = time.Now()
		ss.pace.skip(time.Now())
	}
	rate := paceRate(ss.curRate(), ss.paceEstimate())
	if f.Key {
		rtt := ss.connectRTT
		if ms, _ := ss.link.last(); ms > 0 {
			rtt = time.Duration(ms * float64(time.Millisecond))
		}
		ss.playout.keyframe(f.Size(), max(ss.curRate(), ss.estimate()), rtt, ss.reach)
	}
	for _, p := range pkts {
		size := 12 + len(p.Payload)
		if !first {
			if d := ss.pace.delay(time.Now(), size, rate); d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ss.done:
					t.Stop()
					return nil
				}
			}
		}
		p.Timestamp = ts
		ss.lastTS = ts
		ss.playout.mark(p)
		p.SequenceNumber = ss.seq
		ss.seq++
		if err := ss.video.WriteRTP(p); err != nil {
			return err
		}
		ss.bytes.Add(uint64(size))
	}
	ss.s.metrics.bytes.Add(float64(f.Size()))
	return nil
}

// cleanup runs once, on the session's goroutine, after stop.
func (ss *session) cleanup() {
	_ = ss.pc.Close()
	s := ss.s
	s.mu.Lock()
	delete(s.sessions, ss.id)
	s.mu.Unlock()
	s.unadmit(ss.camera, ss.who)
	ss.mu.Lock()
	ss.end = time.Now()
	ss.mu.Unlock()
	s.metrics.active.Dec()
	rec := ss.record()
	s.log.Info("video: viewing session ended", "camera", rec.Camera, "who", rec.Who, "remote", rec.Remote,
		"duration", rec.End.Sub(rec.Start).Round(time.Millisecond), "bytes", rec.Bytes, "reason", rec.Reason)
	if s.cfg.Audit != nil {
		// The session is over whatever the log says; the hook reports its
		// own failure (a gateway fault).
		_ = s.cfg.Audit(rec)
	}
	s.wg.Done()
}

func audioRate(codec string) int {
	if codec == hub.CodecOpus {
		return 48000
	}
	return 8000
}

// clock maps the camera's presentation times to one viewer's RTP
// timestamps, continuous across catch-up bursts and camera restarts.
type clock struct {
	rate     int64
	have     bool
	lastPTS  time.Duration
	lastOut  uint32
	lastWall time.Time
	rebased  bool
}

func newClock(rate int) *clock { return &clock{rate: int64(rate)} }

// rebase makes the next step come from the wall clock: the next frame is
// from another stream, whose presentation times have another origin.
func (c *clock) rebase() { c.rebased = true }

// maxLag is how far behind the camera a session may fall before it skips
// ahead to the newest keyframe.
const maxLag = 2 * time.Second

// maxStep bounds a timestamp jump taken from the camera's clock; a larger
// one (or a backwards one) is a new stream.
const maxStep = 5 * time.Second

func (c *clock) next(pts time.Duration, catchup bool, now time.Time) uint32 {
	if !c.have {
		c.have, c.lastPTS, c.lastOut, c.lastWall = true, pts, rand.Uint32(), now
		return c.lastOut
	}
	var step time.Duration
	d := pts - c.lastPTS
	switch {
	case catchup:
		step = time.Millisecond
	case d > 0 && d <= maxStep && !c.rebased:
		step = d
	default:
		// The camera's clock jumped (a reconnect): carry on from the wall
		// clock so the player sees one continuous stream.
		step = min(max(now.Sub(c.lastWall), time.Millisecond), maxStep)
	}
	c.lastOut += uint32(int64(step) * c.rate / int64(time.Second))
	c.lastPTS, c.lastWall, c.rebased = pts, now, false
	return c.lastOut
}
