package source

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/conn"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"

	"github.com/shelterwatch/shelterwatch/video/hub"
)

// A hostile camera: a raw TCP server whose replies are the fuzzer's bytes.
// It answers OPTIONS itself (echoing CSeq, so every input gets as far as
// DESCRIBE) and every other request with the next scripted reply, whatever
// the request; right after the last reply it sends the interleaved data,
// then closes its side. It serves one connection: a redirect back to it
// finds nobody, and the source may dial nothing else.
//
// The fuzz input is the replies, separated by NUL bytes (which RTSP text
// never holds), and the data.

// startHostileCamera serves replies, then data, to one connection, and
// returns its address. wait bounds how long it waits for the client's next
// request: a client waiting for the rest of a truncated reply sends none,
// and the camera then hangs up.
func startHostileCamera(t testing.TB, replies [][]byte, data []byte, wait time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		ln.Close()
		if err != nil {
			return
		}
		defer nc.Close()
		serveHostile(nc, replies, data, wait)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

func serveHostile(nc net.Conn, replies [][]byte, data []byte, wait time.Duration) {
	defer func() {
		// Half-close, so the client reads everything sent before it
		// sees the end, and drain what it still sends (a TEARDOWN).
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		nc.SetReadDeadline(time.Now().Add(time.Second))
		var buf [4096]byte
		for {
			if _, err := nc.Read(buf[:]); err != nil {
				return
			}
		}
	}()
	rc := conn.NewConn(nc)
	write := func(b []byte) bool {
		nc.SetWriteDeadline(time.Now().Add(time.Second))
		_, err := nc.Write(b)
		return err == nil
	}
	for next := 0; next < len(replies); {
		nc.SetReadDeadline(time.Now().Add(wait))
		what, err := rc.Read()
		if err != nil {
			return
		}
		req, ok := what.(*base.Request)
		if !ok {
			continue // the client's RTCP
		}
		if req.Method == base.Options {
			cseq := ""
			if v := req.Header["CSeq"]; len(v) == 1 {
				cseq = v[0]
			}
			if !write(fmt.Appendf(nil, "RTSP/1.0 200 OK\r\nCSeq: %s\r\nPublic: DESCRIBE, SETUP, PLAY, TEARDOWN\r\n\r\n", cseq)) {
				return
			}
			continue
		}
		if !write(replies[next]) {
			return
		}
		next++
		if next < len(replies) && !answers(replies[next-1], req) {
			// The client waits for a reply it will not get: hang up now
			// rather than after wait, which keeps the fuzzer fast.
			return
		}
	}
	write(data)
}

// answers reports whether reply holds a complete response the client takes
// as the answer to req: one that parses, with req's CSeq or none (the
// client skips responses with another). It reads each reply alone, so a
// wrong guess (a response split across replies) ends a session early or
// late, and nothing worse.
func answers(reply []byte, req *base.Request) bool {
	var cseq string
	if v := req.Header["CSeq"]; len(v) == 1 {
		cseq = v[0]
	}
	rc := conn.NewConn(struct {
		io.Reader
		io.Writer
	}{bytes.NewReader(reply), io.Discard})
	for {
		what, err := rc.Read()
		if err != nil {
			return false
		}
		if res, ok := what.(*base.Response); ok {
			if v, ok := res.Header["CSeq"]; !ok || len(v) != 1 || strings.TrimSpace(v[0]) == cseq {
				return true
			}
		}
	}
}

// onlyDial lets the source dial addr and nothing else.
func onlyDial(addr string) func(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		if address != addr {
			return nil, fmt.Errorf("dial %s: the test camera is at %s", address, addr)
		}
		return d.DialContext(ctx, network, address)
	}
}

// hostileSession runs one session of a new source against a hostile camera
// serving replies (NUL-separated) and then data, waiting for each request
// at most wait. It fails the test if the
// session outlives its context by more than a second, ends without an
// error, or leaves a status that is neither failed nor connecting, or has
// no reason.
func hostileSession(t testing.TB, replies, data []byte, wait time.Duration) (*Source, *hub.Hub) {
	t.Helper()
	addr := startHostileCamera(t, bytes.Split(replies, []byte{0}), data, wait)
	h := hub.New(hub.Options{})
	t.Cleanup(h.Close)
	// Credentials, so a 401 reply is answered.
	src, err := New(Options{Name: "hostile", URL: "rtsp://user:pass@" + addr + "/cam", Transport: TransportTCP, Hub: h})
	if err != nil {
		t.Fatal(err)
	}
	src.dial = onlyDial(addr)
	const limit = 3 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := src.attempt(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the session ended without an error")
		}
	case <-time.After(limit + time.Second):
		t.Fatalf("the session still runs a second after its %v context ended", limit)
	}
	st := src.Status()
	if (st.State != StateFailed && st.State != StateConnecting) || st.Reason == "" {
		t.Fatalf("status after the session: state %q, reason %q", st.State, st.Reason)
	}
	return src, h
}

func FuzzHostileCamera(f *testing.F) {
	for _, s := range hostileSeeds(f) {
		f.Add(s.replies(), s.data)
	}
	f.Fuzz(func(t *testing.T, replies, data []byte) {
		// The camera hangs up at once on a reply the client cannot take;
		// the wait is for what that guess misses, and the fuzzer's speed
		// is the session's.
		hostileSession(t, replies, data, 250*time.Millisecond)
	})
}

// TestHostileCameraSeedsPlay checks that the valid seeds get all the way:
// the source relays their data, so the fuzzer starts from the code that
// handles a live stream, not just the handshake.
func TestHostileCameraSeedsPlay(t *testing.T) {
	for _, s := range hostileSeeds(t) {
		if s.want == (hub.Media{}) {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			// A long wait: a loaded machine must not cut a valid
			// exchange short.
			src, h := hostileSession(t, s.replies(), s.data, 2*time.Second)
			m, _ := h.Media()
			if m != s.want {
				t.Errorf("media %+v, want %+v", m, s.want)
			}
			st := src.Status()
			if st.Frames == 0 || st.LastKeyframe.IsZero() {
				t.Errorf("no keyframe relayed: %+v", st)
			}
			if s.want.Audio != "" && st.AudioPackets == 0 {
				t.Errorf("no audio relayed: %+v", st)
			}
			if s.bframes != (st.BFrames > 0) || s.bframes != (st.Warning != "") {
				t.Errorf("B-frames %v: status counts %d, warning %q", s.bframes, st.BFrames, st.Warning)
			}
			if !strings.Contains(st.Reason, "EOF") {
				t.Errorf("reason %q, want the camera's hang-up", st.Reason)
			}
		})
	}
}

type hostileSeed struct {
	name  string
	reply [][]byte  // to each request but OPTIONS, in order
	data  []byte    // after the last reply
	want  hub.Media // zero: not meant to play
	// bframes: the data has PTS going backwards.
	bframes bool
}

func (s hostileSeed) replies() []byte { return bytes.Join(s.reply, []byte{0}) }

// H.265 parameter sets from a libx265 clip (128x72).
var (
	seedVPS = "QAEMAf//BAgAAAMAnggAAAMAAB66AkA="
	seedSPS = "QgEBBAgAAAMAnggAAAMAAB6QAgQKPict0lJheAtwICAAQAAAAwBAAAAGQg=="
	seedPPS = "RAHAcxgwGJA="
)

func hostileSeeds(t testing.TB) []hostileSeed {
	t.Helper()
	b64 := base64.StdEncoding.EncodeToString
	h264SDP := "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n" +
		"a=fmtp:96 packetization-mode=1; sprop-parameter-sets=" + b64(testSPS) + "," + b64(testPPS) + "\r\na=control:trackID=0\r\n"
	h265SDP := "m=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n" +
		"a=fmtp:96 sprop-vps=" + seedVPS + "; sprop-sps=" + seedSPS + "; sprop-pps=" + seedPPS + "\r\na=control:trackID=0\r\n"
	pcmuSDP := "m=audio 0 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=control:trackID=1\r\n"
	aacSDP := "m=audio 0 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/16000/1\r\n" +
		"a=fmtp:97 profile-level-id=1; mode=AAC-hbr; sizelength=13; indexlength=3; indexdeltalength=3; config=1408\r\na=control:trackID=1\r\n"
	// Replies carry the CSeq of the request they answer (OPTIONS is 1):
	// the client ignores a reply with another one.
	describeN := func(cseq int, media string) []byte {
		sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n" + media
		return fmt.Appendf(nil, "RTSP/1.0 200 OK\r\nCSeq: %d\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s", cseq, len(sdp), sdp)
	}
	describe := func(media string) []byte { return describeN(2, media) }
	setupN := func(cseq int, channels string) []byte {
		return fmt.Appendf(nil, "RTSP/1.0 200 OK\r\nCSeq: %d\r\nTransport: RTP/AVP/TCP;unicast;interleaved=%s\r\nSession: 4f2a9c;timeout=60\r\n\r\n", cseq, channels)
	}
	playN := func(cseq int) []byte {
		return fmt.Appendf(nil, "RTSP/1.0 200 OK\r\nCSeq: %d\r\nSession: 4f2a9c\r\nRange: npt=0.000-\r\n\r\n", cseq)
	}
	setup, play := setupN(3, "0-1"), playN(4)
	r := func(replies ...[]byte) [][]byte { return replies }

	frame := func(channel int, payload []byte) []byte {
		b, err := base.InterleavedFrame{Channel: channel, Payload: payload}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// packets packetizes access units with one encoder, the i-th stamped
	// at presentation slot slots[i] (frames of 1/30 s).
	packets := func(channel int, f format.Format, slots []int, aus ...[][]byte) []byte {
		var encode func([][]byte) ([]*rtp.Packet, error)
		switch f := f.(type) {
		case *format.H264:
			enc, err := f.CreateEncoder()
			if err != nil {
				t.Fatal(err)
			}
			encode = enc.Encode
		case *format.H265:
			enc, err := f.CreateEncoder()
			if err != nil {
				t.Fatal(err)
			}
			encode = enc.Encode
		}
		var out []byte
		for i, au := range aus {
			pkts, err := encode(au)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pkts {
				p.Timestamp = uint32(slots[i] * 3000)
				b, err := p.Marshal()
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, frame(channel, b)...)
			}
		}
		return out
	}
	inOrder := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	senderReport := func(channel int) []byte {
		sr := make([]byte, 28)
		sr[0], sr[1] = 0x80, 200
		binary.BigEndian.PutUint16(sr[2:], 6)
		binary.BigEndian.PutUint32(sr[4:], 0x1234)
		binary.BigEndian.PutUint64(sr[8:], 0xe9d1_0000_0000_0000)
		return frame(channel, sr)
	}
	bigIDR := append([]byte{0x65}, bytes.Repeat([]byte{0xab}, 1600)...) // two FU-A fragments
	h264f := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	h264Data := append(senderReport(1), packets(0, h264f, inOrder,
		[][]byte{testIDR(0)}, [][]byte{testP(1)}, [][]byte{bigIDR}, [][]byte{testP(3)})...)
	bframes := packets(0, h264f, []int{0, 3, 1, 2}, [][]byte{testIDR(0)}, [][]byte{testP(3)}, [][]byte{testB(1)}, [][]byte{testB(2)})
	var audio []byte
	for k := range 5 {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(k), Timestamp: uint32(k * 160), SSRC: 9},
			Payload: testAudio(k, 160)}
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		audio = append(audio, frame(2, b)...)
	}
	vps, _ := base64.StdEncoding.DecodeString(seedVPS)
	sps, _ := base64.StdEncoding.DecodeString(seedSPS)
	pps, _ := base64.StdEncoding.DecodeString(seedPPS)
	h265f := &format.H265{PayloadTyp: 96}
	h265Data := packets(0, h265f, inOrder, [][]byte{vps, sps, pps, {0x28, 0x01, 0xaf, 0x1d}}, [][]byte{{0x02, 0x01, 0xd0, 0x09}},
		[][]byte{append([]byte{0x26, 0x01}, bytes.Repeat([]byte{0x5c}, 1600)...)})

	// Garbage after a valid handshake: a bad RTP version, an FU-A with no
	// start, a STAP-A claiming more than it holds, an empty frame, an
	// unknown channel, and a frame cut short.
	garbage := bytes.Join([][]byte{
		frame(0, []byte{0x00, 0x60, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0x65}),
		frame(0, []byte{0x80, 0x60, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0x7c, 0x45, 0xaa}),
		frame(0, []byte{0x80, 0xe0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0x78, 0x00, 0xff, 0x67}),
		frame(0, []byte{0x80, 0xe0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0x78, 0x00, 0x00}),
		frame(0, nil),
		frame(7, []byte("hello")),
		{'$', 0, 0xff, 0xff, 0x80, 0xe0},
	}, nil)

	return []hostileSeed{
		{name: "H.264", reply: r(describe(h264SDP), setup, play), data: h264Data,
			want: hub.Media{Video: hub.CodecH264}},
		{name: "H.264 and PCMU", reply: r(describe(h264SDP+pcmuSDP), setup, setupN(4, "2-3"), playN(5)),
			data: append(append([]byte{}, h264Data...), audio...),
			want: hub.Media{Video: hub.CodecH264, Audio: hub.CodecPCMU, AudioRate: 8000, AudioChannels: 1}},
		{name: "H.264 and AAC", reply: r(describe(h264SDP+aacSDP), setup, play), data: h264Data,
			want: hub.Media{Video: hub.CodecH264,
				Note: "audio AAC is not relayed: the gateway does not transcode; set the camera's audio to G.711 or Opus"}},
		{name: "H.265", reply: r(describe(h265SDP), setup, play), data: h265Data,
			want: hub.Media{Video: hub.CodecH265}},
		{name: "B-frames", reply: r(describe(h264SDP), setup, play), data: bframes,
			want: hub.Media{Video: hub.CodecH264}, bframes: true},
		{name: "unauthorized, then the digest answered", reply: r(
			[]byte("RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"abc\"\r\n\r\n"),
			describeN(3, h264SDP), setupN(4, "0-1"), playN(5)), data: h264Data,
			want: hub.Media{Video: hub.CodecH264}},
		{name: "garbage RTP", reply: r(describe(h264SDP), setup, play), data: garbage},
		{name: "truncated SDP", reply: r(describe(h264SDP)[:len(describe(h264SDP))-40], setup, play)},
		{name: "huge Content-Length", reply: r([]byte("RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: 99999999999\r\n\r\nv=0\r\n"), setup, play)},
		{name: "negative Content-Length", reply: r([]byte("RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Type: application/sdp\r\nContent-Length: -5\r\n\r\n"), setup, play)},
		{name: "bad status line", reply: r([]byte("RTSP/1.0 2OO OK\r\nCSeq: 2\r\n\r\n"), setup, play)},
		{name: "HTTP reply", reply: r([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), setup, play)},
		{name: "no video", reply: r(describe(pcmuSDP), setup, play)},
		{name: "SDP garbage", reply: r(describe("m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 sprop-parameter-sets=!!!,???\r\n"), setup, play)},
		{name: "redirect elsewhere", reply: r([]byte("RTSP/1.0 302 Found\r\nCSeq: 2\r\nLocation: rtsp://192.0.2.1/cam\r\n\r\n"), setup, play)},
		{name: "wrong interleaved channels", reply: r(describe(h264SDP), setupN(3, "5-6"), play), data: h264Data},
		{name: "audio setup refused", reply: r(describe(h264SDP+pcmuSDP), setup, []byte("RTSP/1.0 461 Unsupported Transport\r\nCSeq: 4\r\n\r\n"), playN(5)),
			data: h264Data, want: hub.Media{Video: hub.CodecH264,
				Note: "audio PCMU is not relayed: the camera refused to set it up (461 Unsupported Transport)"}},
		{name: "UDP transport reply", reply: r(describe(h264SDP),
			[]byte("RTSP/1.0 200 OK\r\nCSeq: 3\r\nTransport: RTP/AVP;unicast;client_port=5000-5001;server_port=6000-6001\r\nSession: 1\r\n\r\n"), play)},
		{name: "PLAY refused", reply: r(describe(h264SDP), setup, []byte("RTSP/1.0 454 Session Not Found\r\nCSeq: 4\r\n\r\n"))},
		// gortsplib (v4.16.2) turns a control attribute that is no URL
		// into a nil URL without an error, and its SETUP then crashes the
		// process on a nil pointer, on its own goroutine.
		{name: "control not a URL", reply: r(describe(strings.Replace(h264SDP, "trackID=0", "trackID=%zz", 1)), setup, play), data: h264Data},
		{name: "control not a URL, after a 401", reply: r(
			[]byte("RTSP/1.0 401 Unauthorized\r\nCSeq: 2\r\nWWW-Authenticate: Digest realm=\"cam\", nonce=\"abc\"\r\n\r\n"),
			describeN(3, strings.Replace(h264SDP, "trackID=0", "track\x7f", 1)), setupN(4, "0-1"), playN(5)), data: h264Data},
		{name: "audio control not a URL", reply: r(describe(h264SDP+strings.Replace(pcmuSDP, "trackID=1", "%zz", 1)), setup, play),
			data: h264Data, want: hub.Media{Video: hub.CodecH264,
				Note: `audio PCMU is not relayed: the camera's description has a track control "%zz" that is not a URL`}},
		{name: "silence"},
	}
}
