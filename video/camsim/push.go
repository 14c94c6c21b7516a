package camsim

import (
	"errors"
	"slices"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// push is one publisher's live stream on one path, from its ANNOUNCE until
// its session closes.
type push struct {
	publisher *gortsplib.ServerSession
	conn      *gortsplib.ServerConn // the publisher's RTSP connection
	stream    *gortsplib.ServerStream
}

// refuse answers a request with code and a reason phrase that says why, so
// that the publisher's log (ffmpeg prints the status line) explains it.
func refuse(code base.StatusCode, reason string) *base.Response {
	return &base.Response{StatusCode: code, StatusMessage: base.StatusMessages[code] + " (" + reason + ")"}
}

// OnAnnounce implements gortsplib.ServerHandlerOnAnnounce: it reserves the
// path for the publisher and creates the stream that readers will play.
func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	key := pathKey(ctx.Path)
	switch {
	case !h.opts.Push:
		return refuse(base.StatusForbidden, "pushes are disabled"), nil
	case key == "":
		return refuse(base.StatusBadRequest, "a push needs a path"), nil
	case h.cameras[key] != nil:
		return refuse(base.StatusForbidden, "path serves a looped clip"), nil
	}
	for _, medi := range ctx.Description.Medias {
		for _, forma := range medi.Formats {
			// H.264 is re-packetised with FU-A and STAP-A (see newH264Stamper),
			// which readers only expect in packetization mode 1.
			if f, ok := forma.(*format.H264); ok && f.PacketizationMode == 0 {
				f.PacketizationMode = 1
			}
		}
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if _, busy := h.pushes[key]; busy {
		// Temporary: the path is free again once the publisher leaves.
		return refuse(base.StatusServiceUnavailable, "path already has a publisher"), nil
	}
	stream := &gortsplib.ServerStream{Server: h.rtsp, Desc: ctx.Description}
	if err := stream.Initialize(); err != nil {
		return &base.Response{StatusCode: base.StatusInternalServerError}, err
	}
	h.pushes[key] = &push{publisher: ctx.Session, conn: ctx.Conn, stream: stream}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord implements gortsplib.ServerHandlerOnRecord: from now on every
// RTP packet of the publisher goes to the readers of its path.
func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	h.mu.Lock()
	p := h.pushes[pathKey(ctx.Path)]
	h.mu.Unlock()
	if p == nil || p.publisher != ctx.Session {
		// gortsplib only lets a session RECORD the path it announced.
		return refuse(base.StatusBadRequest, "path was not announced by this session"), nil
	}
	for _, medi := range ctx.Session.AnnouncedDescription().Medias {
		for _, forma := range medi.Formats {
			ctx.Session.OnPacketRTP(medi, forma, p.forwarder(medi, forma, h.opts.Now))
		}
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose implements gortsplib.ServerHandlerOnSessionClose: when
// the publisher leaves, its stream closes, which disconnects the readers as
// a camera going away would, and the path is free for the next push.
// gortsplib calls it after the last packet callback of the session.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	key := pathKey(ctx.Session.SetuppedPath())
	h.mu.Lock()
	p, ok := h.pushes[key]
	if !ok || p.publisher != ctx.Session { // a reader, or a refused publisher
		h.mu.Unlock()
		return
	}
	delete(h.pushes, key)
	h.mu.Unlock()
	p.stream.Close()
}

// OnConnClose implements gortsplib.ServerHandlerOnConnClose. A publisher
// over UDP keeps its session in gortsplib after its RTSP connection closes,
// until no packet came for the server's ReadTimeout (10 s); a killed
// publisher would hold its path that long. Closing the session with the
// connection frees the path at once, as over TCP.
func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range h.pushes {
		if p.conn == ctx.Conn {
			p.publisher.Close() // only cancels: OnSessionClose runs later
		}
	}
}

// forwarder returns the callback that writes the publisher's packets of one
// format to the readers. H.264 is stamped; everything else passes through.
//
// Write errors are not returned anywhere: the stream is closed (the
// publisher is leaving) or the packet does not fit the server's
// MaxPacketSize. Either way the packet is lost, as on a real network; each
// reader's own queue overflows are gortsplib's (it drops for that reader).
func (p *push) forwarder(medi *description.Media, forma format.Format, now func() time.Time) gortsplib.OnPacketRTPFunc {
	if f, ok := forma.(*format.H264); ok {
		if st, err := newH264Stamper(f, now); err == nil {
			return func(pkt *rtp.Packet) {
				pkts, sent := st.stamp(pkt)
				for _, out := range pkts {
					_ = p.stream.WritePacketRTPWithNTP(medi, out, sent)
				}
			}
		}
		// Packetization mode 2 (interleaved) cannot be decoded here: pass
		// the stream through unstamped.
	}
	return func(pkt *rtp.Packet) {
		_ = p.stream.WritePacketRTP(medi, pkt)
	}
}

// h264Stamper re-packetises one pushed H.264 format so that every access
// unit carries the send-time stamp and every IDR picture its SPS and PPS.
// A packet callback of one format is never called concurrently, so it needs
// no lock.
type h264Stamper struct {
	dec *rtph264.Decoder
	enc *rtph264.Encoder
	now func() time.Time

	// sps and pps are the latest parameter sets, from the SDP and then in
	// band. Publishers like ffmpeg's RTSP muxer put them in the SDP only.
	sps, pps []byte

	// buffered tells whether the decoder holds NAL units of an unfinished
	// access unit, and bufTime their RTP time: the decoder ends an access
	// unit on a marker bit, but also on a new timestamp (for senders that
	// never set the marker) and then returns the one it held.
	buffered bool
	bufTime  uint32
}

func newH264Stamper(f *format.H264, now func() time.Time) (*h264Stamper, error) {
	dec, err := f.CreateDecoder()
	if err != nil {
		return nil, err
	}
	enc, err := f.CreateEncoder()
	if err != nil {
		return nil, err
	}
	sps, pps := f.SafeParams()
	return &h264Stamper{dec: dec, enc: enc, now: now, sps: sps, pps: pps}, nil
}

// endsNALU tells whether pkt completes at least one NAL unit: all packets
// but FU-A fragments before the last.
func endsNALU(pkt *rtp.Packet) bool {
	p := pkt.Payload
	return len(p) < 2 || h264.NALUType(p[0]&0x1f) != h264.NALUTypeFUA || p[1]&0x40 != 0
}

// stamp takes one packet of the publisher and returns the packets of a
// stamped access unit once pkt completes one, with the access unit's RTP
// time, and the send time written in the stamp.
func (s *h264Stamper) stamp(pkt *rtp.Packet) ([]*rtp.Packet, time.Time) {
	au, err := s.dec.Decode(pkt)
	switch {
	case errors.Is(err, rtph264.ErrMorePacketsNeeded):
		if endsNALU(pkt) && !s.buffered {
			s.buffered, s.bufTime = true, pkt.Timestamp
		}
		return nil, time.Time{}
	case err != nil:
		// A broken access unit (a lost fragment, too large), dropped like
		// a lost one.
		return nil, time.Time{}
	}
	rtpTime := pkt.Timestamp
	if s.buffered && s.bufTime != pkt.Timestamp {
		// Ended by the new timestamp: au is the held access unit, and
		// pkt's NAL units are held now, even if pkt has the marker.
		rtpTime, s.bufTime = s.bufTime, pkt.Timestamp
	} else {
		s.buffered = false
	}
	for _, nalu := range au {
		switch {
		case len(nalu) == 0:
		case h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeSPS:
			s.sps = nalu
		case h264.NALUType(nalu[0]&0x1f) == h264.NALUTypePPS:
			s.pps = nalu
		}
	}
	sent := s.now()
	au = stampAccessUnit(au, s.sps, s.pps, sent)
	if len(au) == 0 {
		return nil, time.Time{}
	}
	pkts, err := s.enc.Encode(au)
	if err != nil {
		return nil, time.Time{}
	}
	for _, out := range pkts {
		out.Timestamp = rtpTime
	}
	return pkts, sent
}

// stampAccessUnit returns au with a send-time stamp for t just before its
// first slice, in place of any stamp it had (a push may relay a stamped
// camera), and, when au is an IDR picture without parameter sets, the
// missing ones of sps and pps after any access unit delimiter. Empty NAL
// units are dropped, and so are those of the types that only RTP uses
// (STAP, MTAP, FU; RFC 6184 5.2): sent on, a reader would take them for
// packets to unpack. An access unit without a slice is not stamped.
func stampAccessUnit(au [][]byte, sps, pps []byte, t time.Time) [][]byte {
	if slices.ContainsFunc(au, dropNALU) {
		au = slices.DeleteFunc(slices.Clone(au), dropNALU)
	}
	first := -1 // index of the first slice
	var hasSPS, hasPPS, idr bool
	for i, nalu := range au {
		switch typ := h264.NALUType(nalu[0] & 0x1f); typ {
		case h264.NALUTypeSPS:
			hasSPS = true
		case h264.NALUTypePPS:
			hasPPS = true
		case h264.NALUTypeNonIDR, h264.NALUTypeDataPartitionA, h264.NALUTypeDataPartitionB,
			h264.NALUTypeDataPartitionC, h264.NALUTypeIDR:
			if first < 0 {
				first = i
			}
			idr = idr || typ == h264.NALUTypeIDR
		}
	}
	if first < 0 {
		return au
	}
	addSPS := idr && !hasSPS && sps != nil
	addPPS := idr && !hasPPS && pps != nil
	out := make([][]byte, 0, len(au)+3)
	for i, nalu := range au {
		// SPS after any delimiter, PPS after it and any SPS.
		typ := h264.NALUType(nalu[0] & 0x1f)
		if addSPS && typ != h264.NALUTypeAccessUnitDelimiter {
			out = append(out, sps)
			addSPS = false
		}
		if addPPS && typ != h264.NALUTypeAccessUnitDelimiter && typ != h264.NALUTypeSPS {
			out = append(out, pps)
			addPPS = false
		}
		if i == first {
			out = append(out, stampNALU(t))
		}
		if typ == h264.NALUTypeSEI {
			if _, stamped := ParseStamp(au[i : i+1]); stamped {
				continue
			}
		}
		out = append(out, nalu)
	}
	return out
}

func dropNALU(nalu []byte) bool {
	if len(nalu) == 0 {
		return true
	}
	typ := h264.NALUType(nalu[0] & 0x1f)
	return typ >= h264.NALUTypeSTAPA && typ <= h264.NALUTypeFUB
}
