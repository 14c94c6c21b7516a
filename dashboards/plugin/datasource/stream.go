package datasource

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/grafana/grafana-plugin-sdk-go/backend"
	"github.com/grafana/grafana-plugin-sdk-go/data"

	"github.com/shelterwatch/shelterwatch/dashboards/plugin/gatewayapi"
)

// SubscribeStream allows the alarm stream only.
func (d *Datasource) SubscribeStream(_ context.Context, req *backend.SubscribeStreamRequest) (*backend.SubscribeStreamResponse, error) {
	if req.Path != StreamAlarms {
		return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusNotFound}, nil
	}
	return &backend.SubscribeStreamResponse{Status: backend.SubscribeStreamStatusOK}, nil
}

// PublishStream refuses: the stream is read-only.
func (d *Datasource) PublishStream(context.Context, *backend.PublishStreamRequest) (*backend.PublishStreamResponse, error) {
	return &backend.PublishStreamResponse{Status: backend.PublishStreamStatusPermissionDenied}, nil
}

// RunStream follows every gateway's event stream and sends one frame per
// alarm that opens, changes or closes after the stream started, until ctx
// ends. A gateway that is down or refuses the token is retried with
// capped, jittered backoff; the others go on.
func (d *Datasource) RunStream(ctx context.Context, req *backend.RunStreamRequest, sender *backend.StreamSender) error {
	if req.Path != StreamAlarms {
		return fmt.Errorf("datasource: stream %q: %w", req.Path, errNotStream)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := d.now()
	frames := make(chan *data.Frame, 16)
	var wg sync.WaitGroup
	for _, g := range d.gateways {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.followAlarms(ctx, g, start, frames)
		}()
	}
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case f := <-frames:
			if err := sender.SendFrame(f, data.IncludeAll); err != nil {
				return fmt.Errorf("datasource: send alarm frame: %w", err)
			}
		}
	}
}

// followAlarms reads one gateway's events until ctx ends, reconnecting.
func (d *Datasource) followAlarms(ctx context.Context, g *gateway, start time.Time, out chan<- *data.Frame) {
	f := alarmFollower{gw: g.name, start: start, now: d.now, known: map[string]gatewayapi.Alarm{}, out: out}
	attempt := 0
	for {
		f.received = false
		err := g.client.Events(ctx, func(e gatewayapi.Event) error { return f.handle(ctx, e) })
		if ctx.Err() != nil {
			return
		}
		if f.received {
			attempt = 0
		}
		wait := d.backoff.delay(attempt)
		attempt++
		d.log.Warn("alarm stream: gateway stream ended; reconnecting", "gateway", g.name, "error", gatewayapi.Detail(err), "in", wait.String())
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// alarmFollower turns one gateway's events into alarm frames. It remembers
// the open alarms so that a snapshot after a reconnect sends only what
// changed, and a closed alarm keeps its zone and rule.
type alarmFollower struct {
	gw       string
	start    time.Time
	now      func() time.Time
	known    map[string]gatewayapi.Alarm
	out      chan<- *data.Frame
	received bool
}

func (f *alarmFollower) handle(ctx context.Context, e gatewayapi.Event) error {
	f.received = true
	switch e.Type {
	case "snapshot":
		var s gatewayapi.Snapshot
		if err := json.Unmarshal(e.Data, &s); err != nil {
			return fmt.Errorf("decode snapshot: %w", err)
		}
		open := map[string]bool{}
		for _, a := range s.Alarms {
			open[a.ID] = true
			prev, seen := f.known[a.ID]
			f.known[a.ID] = a
			// New since the stream started, or changed while we were away.
			if (!seen && !a.Updated.Before(f.start)) || (seen && (prev.Seq != a.Seq || prev.State != a.State || !prev.Updated.Equal(a.Updated))) {
				if err := f.send(ctx, a.Updated, a); err != nil {
					return err
				}
			}
		}
		for id, a := range f.known {
			if !open[id] {
				delete(f.known, id)
				a.State = "closed"
				if err := f.send(ctx, f.now(), a); err != nil {
					return err
				}
			}
		}
	case "alarm":
		var a gatewayapi.Alarm
		if err := json.Unmarshal(e.Data, &a); err != nil {
			return fmt.Errorf("decode alarm event: %w", err)
		}
		f.known[a.ID] = a
		t := a.Updated
		if t.IsZero() {
			t = f.now()
		}
		return f.send(ctx, t, a)
	case "alarm_closed":
		var c gatewayapi.AlarmClosed
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return fmt.Errorf("decode alarm_closed event: %w", err)
		}
		a, ok := f.known[c.ID]
		if !ok {
			rule, _, _ := strings.Cut(c.ID, "@")
			a = gatewayapi.Alarm{ID: c.ID, Rule: rule}
		}
		delete(f.known, c.ID)
		a.State = "closed"
		return f.send(ctx, f.now(), a)
	}
	return nil
}

// send hands one alarm row to the sender, waiting while it is busy: an
// alarm is never dropped.
func (f *alarmFollower) send(ctx context.Context, t time.Time, a gatewayapi.Alarm) error {
	fr := newAlarmEventFrame()
	fr.AppendRow(t, f.gw, a.Facility, a.Zone, a.Rule, a.Severity, a.State, a.ID)
	select {
	case f.out <- fr:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is a capped exponential backoff with ±20 % jitter.
type backoff struct{ min, max time.Duration }

func (b backoff) delay(attempt int) time.Duration {
	d := b.min
	for i := 0; i < attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}
