package hub

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// gop publishes frames n..n+len-1 as one GOP of the given length (the
// first is a keyframe).
func frame(n int, key bool) *Frame {
	return &Frame{NALUs: [][]byte{[]byte(fmt.Sprintf("frame-%04d", n))}, PTS: time.Duration(n) * time.Second / 30, Key: key}
}

func name(f *Frame) string { return string(f.NALUs[0]) }

func read(t *testing.T, v *Viewer, n int) []string {
	t.Helper()
	var out []string
	for range n {
		select {
		case f, ok := <-v.C:
			if !ok {
				t.Fatalf("viewer closed after %v", out)
			}
			out = append(out, name(f))
		case <-time.After(5 * time.Second):
			t.Fatalf("no frame within 5s after %v", out)
		}
	}
	return out
}

func TestNewViewerStartsAtTheCachedKeyframe(t *testing.T) {
	h := New(Options{QueueLen: 100})
	defer h.Close()
	// A 10 s keyframe interval at 30 fps: a viewer arriving 2 s into the
	// GOP would wait 8 s for the next keyframe without the cache.
	for n := range 60 {
		h.Publish(frame(n, n == 0))
	}
	v := h.Subscribe()
	got := read(t, v, 60)
	if got[0] != "frame-0000" || got[59] != "frame-0059" {
		t.Fatalf("first and last cached frames: %s, %s", got[0], got[59])
	}
	// Then it follows live.
	h.Publish(frame(60, false))
	if got := read(t, v, 1); got[0] != "frame-0060" {
		t.Fatalf("live frame %s", got[0])
	}
	if s := h.Stats(); s.CachedFrames != 61 || s.Viewers != 1 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestNothingCachedMeansWaitForAKeyframe(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	v := h.Subscribe()
	h.Publish(frame(1, false)) // mid-GOP: useless to a decoder that has nothing
	h.Publish(frame(2, true))
	if got := read(t, v, 1); got[0] != "frame-0002" {
		t.Fatalf("first frame %s, want the keyframe", got[0])
	}
	if v.Dropped() != 1 {
		t.Fatalf("dropped %d", v.Dropped())
	}
}

func TestSlowViewerDropsAndResumesAtKeyframeWithoutSlowingOthers(t *testing.T) {
	h := New(Options{QueueLen: 8})
	defer h.Close()
	slow, fast := h.Subscribe(), h.Subscribe()
	// The fast viewer takes each frame as it comes (the publisher waits
	// for it, so the test does not depend on goroutine timing); the slow
	// one reads nothing. Publish must never wait for the slow one.
	var fastGot []string
	publish := func(f *Frame) {
		t.Helper()
		h.Publish(f)
		select {
		case g := <-fast.C:
			fastGot = append(fastGot, name(g))
		case <-time.After(5 * time.Second):
			t.Fatal("the fast viewer got nothing: Publish blocked or dropped")
		}
	}
	for n := range 15 {
		publish(frame(n, n%5 == 0))
	}
	// The slow viewer's queue holds 8: frames 0-7; everything after is lost
	// while its queue stays full.
	got := read(t, slow, 8)
	if got[0] != "frame-0000" || got[7] != "frame-0007" {
		t.Fatalf("slow viewer's queue: %v", got)
	}
	if slow.Dropped() != 7 {
		t.Fatalf("slow viewer dropped %d, want 7 (frames 8-14)", slow.Dropped())
	}
	// It resumes at the next keyframe, not in the middle of a GOP.
	publish(frame(15, false))
	publish(frame(16, false))
	publish(frame(20, true))
	if got := read(t, slow, 1); got[0] != "frame-0020" {
		t.Fatalf("slow viewer resumed at %s, want the keyframe frame-0020", got[0])
	}
	if len(fastGot) != 18 || fast.Dropped() != 0 {
		t.Fatalf("fast viewer got %d frames, dropped %d", len(fastGot), fast.Dropped())
	}
}

func TestCacheBoundedAndReset(t *testing.T) {
	h := New(Options{QueueLen: 4, MaxCacheBytes: 1 << 20})
	defer h.Close()
	for n := range 10 {
		h.Publish(frame(n, n == 0))
	}
	// The GOP outgrew the queue: not replayed (a new viewer waits for the
	// next keyframe rather than starting mid-GOP).
	if s := h.Stats(); s.CachedFrames != 0 {
		t.Fatalf("cache holds %d frames past its bound", s.CachedFrames)
	}
	h.Publish(frame(10, true))
	h.Reset() // the camera reconnected
	v := h.Subscribe()
	h.Publish(frame(11, false))
	h.Publish(frame(12, true))
	if got := read(t, v, 1); got[0] != "frame-0012" {
		t.Fatalf("after a reset the viewer starts at %s", got[0])
	}
}

func TestCloseEndsViewers(t *testing.T) {
	h := New(Options{})
	v := h.Subscribe()
	v2 := h.Subscribe()
	v2.Close()
	v2.Close() // twice is fine
	h.Close()
	if _, ok := <-v.C; ok {
		t.Fatal("viewer channel open after the hub closed")
	}
	v.Close() // after the hub: no panic
	if late := h.Subscribe(); late != nil {
		if _, ok := <-late.C; ok {
			t.Fatal("a viewer of a closed hub got a frame")
		}
	}
	h.Publish(frame(1, true)) // after close: ignored
}

func BenchmarkPublish(b *testing.B) {
	for _, viewers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			h := New(Options{QueueLen: 1024})
			var wg sync.WaitGroup
			for range viewers {
				v := h.Subscribe()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range v.C {
					}
				}()
			}
			f := &Frame{NALUs: [][]byte{make([]byte, 8000)}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				f.Key = i%60 == 0
				h.Publish(f)
			}
			b.StopTimer()
			h.Close()
			wg.Wait()
			b.ReportMetric(float64(h.Stats().Dropped)/float64(b.N*viewers), "dropped/frame")
		})
	}
}

func TestAudioIsNotCachedAndNeverWaitsForAKeyframe(t *testing.T) {
	h := New(Options{QueueLen: 4})
	defer h.Close()
	h.Publish(frame(0, true))
	h.Publish(&Frame{NALUs: [][]byte{[]byte("audio-0")}, Audio: true})
	v := h.Subscribe()
	if got := read(t, v, 1); got[0] != "frame-0000" {
		t.Fatalf("first frame %s", got[0])
	}
	select {
	case f := <-v.C:
		t.Fatalf("cached audio replayed: %s", name(f))
	default:
	}
	// A viewer that lost video (and waits for a keyframe) still hears.
	for n := 1; n <= 6; n++ {
		h.Publish(frame(n, false))
	}
	read(t, v, 4) // drain; frames 5 and 6 were dropped
	h.Publish(frame(7, false))
	h.Publish(&Frame{NALUs: [][]byte{[]byte("audio-1")}, Audio: true})
	if got := read(t, v, 1); got[0] != "audio-1" {
		t.Fatalf("after a video drop got %s, want the audio packet", got[0])
	}
	if v.Dropped() != 3 {
		t.Fatalf("dropped %d, want 3 (frames 5, 6, 7)", v.Dropped())
	}
}

func TestMediaKnownAfterFirstSet(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	if _, ok := h.Media(); ok {
		t.Fatal("media known before the camera connected")
	}
	known := h.MediaKnown()
	select {
	case <-known:
		t.Fatal("MediaKnown closed early")
	default:
	}
	h.SetMedia(Media{Video: CodecH264, Audio: CodecPCMU, AudioRate: 8000, AudioChannels: 1})
	<-known
	h.Reset()
	m, ok := h.Media()
	if !ok || m.Video != CodecH264 || m.Audio != CodecPCMU {
		t.Fatalf("media after reset: %+v %v", m, ok)
	}
}

func TestResyncRequeuesTheGOPCache(t *testing.T) {
	h := New(Options{QueueLen: 10})
	defer h.Close()
	h.Publish(frame(0, true))
	h.Publish(frame(1, false))
	v := h.Subscribe()
	if v.Backlog != 2 {
		t.Fatalf("backlog %d, want 2", v.Backlog)
	}
	read(t, v, 2)
	h.Publish(frame(2, false))
	h.Publish(frame(3, false)) // still queued when the decoder asks
	if n := v.Resync(); n != 4 {
		t.Fatalf("resync queued %d, want the 4 cached frames", n)
	}
	if got := read(t, v, 4); got[0] != "frame-0000" || got[3] != "frame-0003" {
		t.Fatalf("after resync: %v", got)
	}
	h.Reset()
	if n := v.Resync(); n != 0 {
		t.Fatalf("resync with nothing cached queued %d", n)
	}
	h.Publish(frame(4, false)) // not decodable: skipped
	h.Publish(frame(5, true))
	if got := read(t, v, 1); got[0] != "frame-0005" {
		t.Fatalf("after an empty resync got %s, want the next keyframe", got[0])
	}
}

func TestForgetDropsCacheAndMedia(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	h.SetMedia(Media{Video: CodecH264})
	h.Publish(frame(0, true))
	h.Forget()
	if _, ok := h.Media(); ok {
		t.Fatal("media still known")
	}
	select {
	case <-h.MediaKnown():
		t.Fatal("MediaKnown closed after Forget")
	default:
	}
	if s := h.Stats(); s.CachedFrames != 0 {
		t.Fatalf("stale frames cached: %+v", s)
	}
	h.SetMedia(Media{Video: CodecH265})
	<-h.MediaKnown()
}
