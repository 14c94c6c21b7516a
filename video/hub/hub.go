// Package hub fans one camera's stream out to many viewers.
//
// One source goroutine publishes access units; every viewer has its own
// bounded queue. A viewer too slow to keep up loses frames, counted, and
// resumes at the next keyframe (a decoder cannot use the frames between),
// and never slows the source or the other viewers: Publish does not block.
//
// The hub keeps the latest keyframe and every frame after it (the GOP
// cache). A new viewer gets that cache first, so its first picture is the
// last keyframe, at once, whatever the camera's keyframe interval — the
// leading relays make a new viewer wait for the camera's next keyframe
// (8 s with a 10 s interval). The keyframe access unit carries SPS and PPS
// (the camera source puts them in band), so a decoder can start from it.
//
// Viewers stay subscribed while the camera is away; when it comes back the
// source calls Reset (a new stream may have new parameters) and publishing
// resumes.
package hub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Frame is one access unit of the camera's video, or one audio packet.
type Frame struct {
	// NALUs are the access unit's NAL units (without start codes). For
	// audio, the one element is the codec payload of one RTP packet
	// (G.711 samples or an Opus packet), passed through untouched.
	NALUs [][]byte
	// PTS is the presentation time on the stream's clock.
	PTS time.Duration
	// Key marks an IDR access unit (with its SPS and PPS, and VPS for
	// H.265).
	Key bool
	// Audio marks an audio packet. Audio is never cached (a new viewer
	// hears from the moment it joins) and never waits for a keyframe.
	Audio bool
	// Received is when the source got it, for latency figures.
	Received time.Time
	size     int
}

// Size is the frame's payload in bytes.
func (f *Frame) Size() int {
	if f.size == 0 {
		for _, n := range f.NALUs {
			f.size += len(n)
		}
	}
	return f.size
}

// Codecs the hub relays, named as in SDP.
const (
	CodecH264 = "H264"
	CodecH265 = "H265"
	CodecPCMU = "PCMU"
	CodecPCMA = "PCMA"
	CodecOpus = "OPUS"
)

// Media describes the camera's current stream: what a viewer must be able
// to play. The source sets it each time it connects.
type Media struct {
	// Video is CodecH264 or CodecH265.
	Video string `json:"video"`
	// Audio is CodecPCMU, CodecPCMA, CodecOpus, or "" when the camera
	// sends no audio the hub relays.
	Audio string `json:"audio,omitempty"`
	// AudioRate and AudioChannels describe Audio.
	AudioRate     int `json:"audio_rate,omitempty"`
	AudioChannels int `json:"audio_channels,omitempty"`
	// Note explains a track the camera sends but the hub does not relay
	// (e.g. AAC audio, which would need transcoding).
	Note string `json:"note,omitempty"`
}

// Options bound the hub's memory.
type Options struct {
	// QueueLen is each viewer's queue in frames, and so also the most
	// frames the GOP cache holds (a new viewer's queue starts with the
	// whole cache). Default 600: a 20 s keyframe interval at 30 fps, so
	// that the cache covers the long intervals cameras ship with (at 120,
	// a 10 s GOP at 15 fps outgrew it after 8 s and a fifth of new viewers
	// waited for the next keyframe). A viewer's session writes to the
	// network without blocking, so a long queue does not mean a laggy one.
	QueueLen int
	// MaxCacheBytes bounds the GOP cache (default 8 MiB); a GOP larger than
	// that is not cached and new viewers wait for the next keyframe.
	MaxCacheBytes int
}

// Hub is one camera's fan-out. Its methods are safe for concurrent use;
// Publish is meant for one source goroutine.
type Hub struct {
	opts Options

	mu         sync.Mutex
	cache      []*Frame // latest keyframe and every frame after it
	cacheBytes int
	cacheOK    bool // false: the current GOP outgrew the cache
	viewers    map[*Viewer]struct{}
	closed     bool
	media      Media
	hasMedia   bool
	mediaSet   chan struct{} // closed when media is first known after a Reset

	published, dropped atomic.Uint64

	// bitrate of the video over the last whole window (rateWindow)
	winStart time.Time
	winBytes int
	rate     float64
	lastPub  time.Time
}

// rateWindow is how long the hub measures its video bitrate over: a
// viewer's quality choice compares it with the viewer's link.
const rateWindow = 2 * time.Second

// New returns an empty hub.
func New(opts Options) *Hub {
	if opts.QueueLen <= 0 {
		opts.QueueLen = 600
	}
	if opts.MaxCacheBytes <= 0 {
		opts.MaxCacheBytes = 8 << 20
	}
	return &Hub{opts: opts, viewers: map[*Viewer]struct{}{}, mediaSet: make(chan struct{})}
}

// Viewer is one subscriber. Read frames from C until it is closed (by
// Close, or when the hub closes).
type Viewer struct {
	C <-chan *Frame
	// Backlog is how many frames from the GOP cache were queued when the
	// viewer subscribed: they are the past, to be decoded at once, not
	// played at the camera's pace.
	Backlog int

	h       *Hub
	ch      chan *Frame
	waitKey bool // dropped something: skip to the next keyframe
	dropped atomic.Uint64
	once    sync.Once
}

// Publish hands a frame to every viewer without waiting for any.
func (h *Hub) Publish(f *Frame) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.published.Add(1)
	if !f.Audio {
		h.measure(f.Size(), time.Now())
	}
	switch {
	case f.Audio:
		for v := range h.viewers {
			v.offerAudio(f, &h.dropped)
		}
		return
	case f.Key:
		clear(h.cache)
		h.cache, h.cacheBytes, h.cacheOK = append(h.cache[:0], f), f.Size(), f.Size() <= h.opts.MaxCacheBytes
	case h.cacheOK && len(h.cache) > 0:
		if h.cacheBytes+f.Size() > h.opts.MaxCacheBytes || len(h.cache) >= h.opts.QueueLen {
			// Too long to replay into a queue: new viewers wait for the
			// next keyframe instead.
			clear(h.cache)
			h.cache, h.cacheBytes, h.cacheOK = h.cache[:0], 0, false
		} else {
			h.cache = append(h.cache, f)
			h.cacheBytes += f.Size()
		}
	}
	for v := range h.viewers {
		v.offer(f, &h.dropped)
	}
}

// measure adds a video frame to the bitrate window. Called locked.
func (h *Hub) measure(size int, now time.Time) {
	h.lastPub = now
	if h.winStart.IsZero() {
		h.winStart = now
	}
	h.winBytes += size
	if d := now.Sub(h.winStart); d >= rateWindow {
		h.rate = float64(h.winBytes*8) / d.Seconds()
		h.winStart, h.winBytes = now, 0
	}
}

// Bitrate is the video's bitrate (bit/s) over the last measured window,
// 0 when the stream has stopped or not run for a whole window yet.
func (h *Hub) Bitrate() float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.lastPub) > rateWindow {
		return 0
	}
	return h.rate
}

// CacheBytes is the size of the GOP cache a new viewer would be sent
// (0 when nothing is cached).
func (h *Hub) CacheBytes() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.cacheOK {
		return 0
	}
	return h.cacheBytes
}

// offer queues f for v, or drops it (and everything up to the next
// keyframe) when v's queue is full. Called with the hub locked.
func (v *Viewer) offer(f *Frame, total *atomic.Uint64) {
	if v.waitKey && !f.Key {
		v.dropped.Add(1)
		total.Add(1)
		return
	}
	select {
	case v.ch <- f:
		v.waitKey = false
	default:
		v.waitKey = true
		v.dropped.Add(1)
		total.Add(1)
	}
}

// offerAudio queues an audio packet for v if there is room; audio does not
// depend on earlier packets, so a loss never makes v wait for a keyframe.
func (v *Viewer) offerAudio(f *Frame, total *atomic.Uint64) {
	select {
	case v.ch <- f:
	default:
		v.dropped.Add(1)
		total.Add(1)
	}
}

// Subscribe adds a viewer. Its queue starts with the GOP cache, so the
// first frame it reads is a keyframe when one is cached.
func (h *Hub) Subscribe() *Viewer { return h.subscribe(true) }

// SubscribeAtKey adds a viewer whose first frame is the camera's next
// keyframe, without the cache: a session switching streams keeps playing
// the old one until then, so the switch costs no burst.
func (h *Hub) SubscribeAtKey() *Viewer { return h.subscribe(false) }

func (h *Hub) subscribe(withCache bool) *Viewer {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan *Frame, h.opts.QueueLen)
	v := &Viewer{C: ch, h: h, ch: ch, waitKey: true}
	if h.closed {
		close(ch)
		return v
	}
	if withCache && h.cacheOK && len(h.cache) > 0 {
		for _, f := range h.cache {
			ch <- f // the cache is never longer than the queue
		}
		v.waitKey = false
		v.Backlog = len(h.cache)
	}
	h.viewers[v] = struct{}{}
	return v
}

// Resync replaces what is waiting in the viewer's queue with the GOP cache,
// for a viewer whose decoder lost its reference (a keyframe request): it
// can decode again at once instead of waiting for the camera's next
// keyframe. It returns how many cached frames were queued (0: nothing
// cached, the viewer resumes at the next keyframe). Call it only from the
// goroutine that reads C, so that the count is exact.
func (v *Viewer) Resync() int {
	h := v.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.viewers[v]; !ok {
		return 0
	}
	for drained := false; !drained; {
		select {
		case <-v.ch:
		default:
			drained = true
		}
	}
	if !h.cacheOK || len(h.cache) == 0 {
		v.waitKey = true
		return 0
	}
	for _, f := range h.cache {
		v.ch <- f
	}
	v.waitKey = false
	return len(h.cache)
}

// Dropped is how many frames this viewer lost to its full queue.
func (v *Viewer) Dropped() uint64 { return v.dropped.Load() }

// Close unsubscribes the viewer and closes its channel.
func (v *Viewer) Close() {
	v.once.Do(func() {
		v.h.mu.Lock()
		defer v.h.mu.Unlock()
		if _, ok := v.h.viewers[v]; ok {
			delete(v.h.viewers, v)
			close(v.ch)
		}
	})
}

// Reset forgets the GOP cache (the camera's stream restarted, perhaps with
// new parameters); viewers resume at the next keyframe. The media stays
// known until SetMedia replaces it.
func (h *Hub) Reset() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resetLocked()
}

func (h *Hub) resetLocked() {
	h.winStart, h.winBytes, h.rate = time.Time{}, 0, 0
	clear(h.cache)
	h.cache, h.cacheBytes, h.cacheOK = h.cache[:0], 0, false
	for v := range h.viewers {
		v.waitKey = true
	}
}

// SetMedia records what the camera sends now; the source calls it each
// time it (re)connects, before publishing.
func (h *Hub) SetMedia(m Media) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.media = m
	if !h.hasMedia {
		h.hasMedia = true
		close(h.mediaSet)
	}
}

// Media returns the camera's media and whether it is known yet (it is not
// before the camera's first connection).
func (h *Hub) Media() (Media, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.media, h.hasMedia
}

// MediaKnown is closed once the camera's media is known.
func (h *Hub) MediaKnown() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.mediaSet
}

// Forget drops the GOP cache and the media, as when an on-demand camera
// stops pulling: the next viewer must wait for a fresh stream rather than
// be shown a stale picture as if it were live.
func (h *Hub) Forget() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.resetLocked()
	if h.hasMedia {
		h.media, h.hasMedia, h.mediaSet = Media{}, false, make(chan struct{})
	}
}

// Viewers is the number of subscribed viewers.
func (h *Hub) Viewers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.viewers)
}

// Stats are the hub's counters.
type Stats struct {
	Published, Dropped uint64
	Viewers            int
	CachedFrames       int
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	if h.cacheOK {
		n = len(h.cache)
	}
	return Stats{Published: h.published.Load(), Dropped: h.dropped.Load(), Viewers: len(h.viewers), CachedFrames: n}
}

// Close ends the hub: every viewer's channel is closed.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for v := range h.viewers {
		close(v.ch)
		delete(h.viewers, v)
	}
	clear(h.cache)
	h.cache = nil
}
