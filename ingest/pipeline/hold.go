package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

// heldMsg is a message of HandleAsync whose readings the store refused.
type heldMsg struct {
	ctx  context.Context
	r    *route
	msg  Message
	rs   []reading.Reading
	err  error
	done func(error)
}

// hold passes a refused message to the holder goroutine, starting it if
// none runs. The holder gives the readings to the safety rules, answers
// done at once for a failure that waiting cannot cure, and for a full disk
// tries again every RetryEvery until there is room or the message's
// context ends: HandleAsync's equivalent of Handle's wait, on one
// goroutine for all waiting messages instead of one per message.
func (p *Pipeline) hold(h *heldMsg) {
	p.holdMu.Lock()
	p.held = append(p.held, h)
	start := !p.holding
	p.holding = true
	p.holdMu.Unlock()
	if start {
		go p.holder()
	}
}

func (p *Pipeline) holder() {
	var waiting []*heldMsg
	var tick <-chan time.Time
	for {
		p.holdMu.Lock()
		fresh := p.held
		p.held = nil
		if len(fresh) == 0 && len(waiting) == 0 {
			p.holding = false
			p.holdMu.Unlock()
			return
		}
		p.holdMu.Unlock()
		for _, h := range fresh {
			p.refused(h.ctx, h.rs)
			if !errors.Is(h.err, store.ErrDiskFull) {
				p.m.storeFailed.Inc()
				h.done(fmt.Errorf("pipeline: store readings of %s: %w", h.r.dev.ID, h.err))
				continue
			}
			p.m.waiting.Inc()
			p.logDiskFull(h.r.dev, h.err)
			waiting = append(waiting, h)
		}
		if len(waiting) == 0 {
			continue
		}
		if tick == nil {
			t := time.NewTicker(p.opts.RetryEvery)
			defer t.Stop()
			tick = t.C
		}
		<-tick
		// All at once, so that they share group commits.
		as := p.opts.Store.(AsyncStore)
		results := make(chan error, len(waiting))
		errs := make([]error, len(waiting))
		for i, h := range waiting {
			if errs[i] = h.ctx.Err(); errs[i] != nil {
				results <- nil
				continue
			}
			as.AppendAsync(h.rs, h.r.safety, func(err error) {
				errs[i] = err
				results <- nil
			})
		}
		for range waiting {
			<-results
		}
		kept := waiting[:0]
		for i, h := range waiting {
			err := errs[i]
			switch {
			case err == nil:
				p.m.waiting.Dec()
				p.stored(h.r, &h.msg, h.rs)
				h.done(nil)
			case errors.Is(err, store.ErrDiskFull) && h.ctx.Err() == nil:
				kept = append(kept, h)
			default:
				p.m.waiting.Dec()
				p.m.storeFailed.Inc()
				if h.ctx.Err() != nil {
					err = fmt.Errorf("waiting for room on a full disk: %w", h.ctx.Err())
				}
				h.done(fmt.Errorf("pipeline: store readings of %s: %w", h.r.dev.ID, err))
			}
		}
		clear(waiting[len(kept):])
		waiting = kept
	}
}
