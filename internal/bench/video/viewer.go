package video

import (
	"context"
	"sync"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/shelterwatch/shelterwatch/video/camsim"
	"github.com/shelterwatch/shelterwatch/video/whepclient"
)

// viewer counts the frames of one player and measures their latency
// between from and to.
type viewer struct {
	c        *whepclient.Client
	stopCh   chan struct{}
	done     chan struct{}
	closeOne sync.Once

	mu        sync.Mutex
	from, to  time.Time // to zero: open
	frames    int64
	last      time.Time
	maxGap    time.Duration
	latency   []time.Duration
	keyLat    []time.Duration // keyframes only
	unstamped int64
}

// start reads the player's access units until close; those that arrive
// from from on are measured.
func (v *viewer) start(from time.Time) {
	v.stopCh, v.done = make(chan struct{}), make(chan struct{})
	v.from = from
	go func() {
		defer close(v.done)
		for {
			select {
			case au, ok := <-v.c.AccessUnits():
				if !ok {
					return
				}
				v.note(au)
			case <-v.stopCh:
				return
			}
		}
	}()
}

func (v *viewer) note(au whepclient.AccessUnit) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if au.At.Before(v.from) || !v.to.IsZero() && !au.At.Before(v.to) {
		return
	}
	v.frames++
	if !v.last.IsZero() {
		v.maxGap = max(v.maxGap, au.At.Sub(v.last))
	}
	v.last = au.At
	if sent, ok := camsim.ParseStamp(au.NALUs); ok {
		v.latency = append(v.latency, au.At.Sub(sent))
		if isKeyframe(au.NALUs) {
			v.keyLat = append(v.keyLat, au.At.Sub(sent))
		}
	} else {
		v.unstamped++
	}
}

// setWindow measures from from on (dropping what came before).
func (v *viewer) setWindow(from time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.from, v.frames, v.last, v.maxGap, v.latency, v.keyLat, v.unstamped = from, 0, time.Time{}, 0, nil, nil, 0
}

func (v *viewer) stopWindow(to time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.to = to
}

// close leaves (DELETE first when hangUp), ends the peer connection and
// waits for the reader. The figures are stable afterwards.
func (v *viewer) close(hangUp bool) {
	v.closeOne.Do(func() {
		if hangUp && v.c.Location != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = v.c.HangUp(ctx)
			cancel()
		}
		_ = v.c.Close()
		if v.stopCh != nil {
			close(v.stopCh)
			<-v.done
		}
	})
}

// closeViewers closes vs in parallel.
func closeViewers(vs []*viewer, hangUp bool) {
	var wg sync.WaitGroup
	for _, v := range vs {
		wg.Go(func() { v.close(hangUp) })
	}
	wg.Wait()
}

// isKeyframe reports whether an access unit holds an IDR picture.
func isKeyframe(au [][]byte) bool {
	for _, n := range au {
		if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
			return true
		}
	}
	return false
}
