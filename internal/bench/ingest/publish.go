package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/shelterwatch/shelterwatch/internal/bench/proc"
	"github.com/shelterwatch/shelterwatch/internal/bench/procstat"
	"github.com/shelterwatch/shelterwatch/internal/bench/report"
)

// publishSpec starts the publisher role.
type publishSpec struct {
	Broker   string `json:"broker"` // tcp://host:port
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Devices  int    `json:"devices"`
	// Format is the scenario's device mix (Scenario.Format): the
	// publishers rebuild the orchestrator's device list from Devices and
	// Format.
	Format string `json:"format,omitempty"`
	Conns  int    `json:"conns"`
	// Window is the most QoS 1 publishes a connection has awaiting PUBACK.
	Window int `json:"window"`
	// Rate is the total publish rate (messages/s); 0 means as fast as the
	// windows allow.
	Rate float64 `json:"rate,omitempty"`
	// MaxBacklog, when > 0, pauses publishing while more than this many
	// published readings are not yet stored by the gateway (the orchestrator
	// reports "stored"). With an external broker a PUBACK only means the
	// broker has the message; without this the publishers would run ahead
	// of the gateway and grow the broker's queue without bound.
	MaxBacklog int64 `json:"max_backlog,omitempty"`
	// PerDevice, when > 0, is how many messages each device publishes:
	// a connection stops once its devices have published that many each
	// (the burst scenarios). 0 publishes until "stop".
	PerDevice int `json:"per_device,omitempty"`
	// Variants, when > 0, is how many successive reports each device's
	// plan holds, stamped a planStep apart (see buildPlan); 0 is
	// planVariants, all stamped at the start.
	Variants int `json:"variants,omitempty"`
}

type publishReady struct {
	Conns           int     `json:"conns"`
	ReadingsPerMsg  float64 `json:"readings_per_msg"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	PlannedMessages int     `json:"planned_messages"`
}

// publishStat is cumulative except Lat*, which cover the publishes
// acknowledged since the previous "mark".
type publishStat struct {
	Published     uint64  `json:"published"`
	Acked         uint64  `json:"acked"`
	AckedReadings uint64  `json:"acked_readings"`
	Failed        uint64  `json:"failed"`
	CPUNanos      int64   `json:"cpu_nanos"`
	LatSamples    int     `json:"lat_samples"`
	LatP50ms      float64 `json:"lat_p50_ms"`
	LatP99ms      float64 `json:"lat_p99_ms"`
	LatMaxms      float64 `json:"lat_max_ms"`
	FirstError    string  `json:"first_error,omitempty"`
}

// PublishRole is the publisher role: K paho clients publishing QoS 1 on
// behalf of N devices, in a process of their own so that their CPU time is
// not the gateway's.
var PublishRole = proc.Role{Name: "publish", New: func() proc.Handler { return (&publisher{}).handle }}

// publisher is the publisher role, from inside its process.
type publisher struct {
	spec  publishSpec
	conns []*pubConn

	published, acked, ackedReadings, failed atomic.Uint64
	pubReadings                             atomic.Int64
	stored                                  atomic.Int64
	firstErr                                atomic.Pointer[string]

	cancel context.CancelFunc
	wg     sync.WaitGroup
	// abandon is closed when stop has waited long enough for PUBACKs:
	// what is still outstanding then counts as failed.
	abandon     chan struct{}
	abandonOnce sync.Once
}

// stopGrace is how long stop waits for outstanding PUBACKs.
const stopGrace = 15 * time.Second

type pubConn struct {
	cl   mqtt.Client
	msgs [][]planMessage // the devices this connection publishes for
	next []int           // per device: index of its next message
	dev  int

	mu  sync.Mutex
	lat []float64 // ms, since the last mark
}

type inflight struct {
	tok      mqtt.Token
	t0       time.Time
	readings int
}

func (p *publisher) handle(_ context.Context, cmd string, args json.RawMessage) (any, bool, error) {
	switch cmd {
	case "init":
		if err := json.Unmarshal(args, &p.spec); err != nil {
			return nil, false, err
		}
		r, err := p.init()
		return r, false, err
	case "probe":
		n, err := p.probe()
		return n, false, err
	case "start":
		return nil, false, p.start()
	case "stored":
		var n int64
		if err := json.Unmarshal(args, &n); err != nil {
			return nil, false, err
		}
		p.stored.Store(n)
		return nil, false, nil
	case "mark":
		return p.mark(), false, nil
	case "stop":
		p.stop()
		return p.mark(), true, nil
	}
	return nil, false, fmt.Errorf("%w %q", proc.ErrUnknownCmd, cmd)
}

func (p *publisher) init() (*publishReady, error) {
	s := &p.spec
	if s.Devices <= 0 || s.Conns <= 0 || s.Window <= 0 {
		return nil, fmt.Errorf("bad spec: devices=%d conns=%d window=%d", s.Devices, s.Conns, s.Window)
	}
	devs, err := benchDevices(s.Devices, s.Format)
	if err != nil {
		return nil, err
	}
	plan, err := buildPlan(devs, time.Now(), s.Variants)
	if err != nil {
		return nil, err
	}
	var msgs, readings int
	for _, d := range plan {
		for _, m := range d {
			msgs++
			readings += m.readings
		}
	}
	t0 := time.Now()
	p.conns = make([]*pubConn, s.Conns)
	for i := range p.conns {
		c := &pubConn{}
		for d := i; d < len(plan); d += s.Conns {
			c.msgs = append(c.msgs, plan[d])
		}
		c.next = make([]int, len(c.msgs))
		o := mqtt.NewClientOptions().
			AddBroker(s.Broker).
			SetClientID(fmt.Sprintf("bench-pub-%d-%d", os.Getpid(), i)).
			SetCleanSession(true).
			SetAutoReconnect(false).
			SetConnectRetry(false).
			SetConnectTimeout(10 * time.Second).
			SetWriteTimeout(10 * time.Second).
			SetKeepAlive(60 * time.Second).
			SetConnectionLostHandler(func(_ mqtt.Client, err error) { p.noteErr(fmt.Errorf("connection %d lost: %w", i, err)) })
		if s.Username != "" {
			o.SetUsername(publisherUser(s.Username, i)).SetPassword(s.Password)
		}
		c.cl = mqtt.NewClient(o)
		p.conns[i] = c
	}
	// Connect in parallel, a few at a time.
	sem := make(chan struct{}, 16)
	errs := make([]error, len(p.conns))
	var wg sync.WaitGroup
	for i, c := range p.conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// The embedded broker refuses a login while its password
			// checks are all busy ("server unavailable"); like a device's
			// firmware, try again a moment later.
			for attempt := 1; ; attempt++ {
				tok := c.cl.Connect()
				if !tok.WaitTimeout(15 * time.Second) {
					errs[i] = fmt.Errorf("connection %d: connect to %s timed out", i, s.Broker)
				} else if err := tok.Error(); err != nil {
					errs[i] = fmt.Errorf("connection %d: connect to %s: %w", i, s.Broker, err)
				} else {
					errs[i] = nil
					return
				}
				if attempt == 20 || !errors.Is(errs[i], packets.ErrorRefusedServerUnavailable) {
					return
				}
				time.Sleep(time.Duration(attempt) * 50 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		p.disconnect()
		return nil, err
	}
	return &publishReady{Conns: len(p.conns), ReadingsPerMsg: float64(readings) / float64(msgs),
		ConnectSeconds: time.Since(t0).Seconds(), PlannedMessages: msgs}, nil
}

// probe publishes one message and returns its readings once the broker
// has acknowledged it. It is not counted in the totals: the orchestrator
// uses it to find out when the gateway is really consuming.
func (p *publisher) probe() (int, error) {
	if len(p.conns) == 0 {
		return 0, errors.New("not connected")
	}
	m := p.conns[0].msgs[0][0]
	tok := p.conns[0].cl.Publish(m.topic, 1, false, m.payload)
	if !tok.WaitTimeout(10 * time.Second) {
		return 0, errors.New("probe: no PUBACK within 10s")
	}
	if err := tok.Error(); err != nil {
		return 0, fmt.Errorf("probe: %w", err)
	}
	return m.readings, nil
}

func (p *publisher) start() error {
	if p.cancel != nil {
		return errors.New("already started")
	}
	if len(p.conns) == 0 {
		return errors.New("not connected")
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.abandon = make(chan struct{})
	var interval time.Duration
	if p.spec.Rate > 0 {
		interval = time.Duration(float64(len(p.conns)) / p.spec.Rate * float64(time.Second))
	}
	for i, c := range p.conns {
		// Spread paced connections over one interval so they do not
		// publish in lockstep.
		offset := interval * time.Duration(i) / time.Duration(len(p.conns))
		p.wg.Go(func() { p.run(ctx, c, interval, offset) })
	}
	return nil
}

// run publishes on one connection: up to Window publishes awaiting PUBACK,
// reaped in order by a second goroutine that records each latency from the
// Publish call to the PUBACK.
func (p *publisher) run(ctx context.Context, c *pubConn, interval, offset time.Duration) {
	window := p.spec.Window
	slots := make(chan struct{}, window)
	pending := make(chan inflight, window)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		for f := range pending {
			ok := false
			select {
			case <-f.tok.Done():
				ok = true
			case <-p.abandon:
			}
			lat := time.Since(f.t0)
			switch {
			case !ok:
				p.failed.Add(1)
				p.noteErr(fmt.Errorf("no PUBACK within %s of stopping", stopGrace))
			case f.tok.Error() != nil:
				p.failed.Add(1)
				p.noteErr(f.tok.Error())
			default:
				p.acked.Add(1)
				p.ackedReadings.Add(uint64(f.readings))
				c.mu.Lock()
				c.lat = append(c.lat, float64(lat)/float64(time.Millisecond))
				c.mu.Unlock()
			}
			<-slots
		}
	}()
	defer func() { close(pending); <-reaped }()

	next := time.Now().Add(offset)
	left := -1 // unlimited
	if p.spec.PerDevice > 0 {
		left = p.spec.PerDevice * len(c.msgs) // round-robin: PerDevice each
	}
	for ; left != 0; left-- {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		if interval > 0 {
			if d := time.Until(next); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					<-slots
					return
				}
			}
			next = next.Add(interval)
		}
		for p.spec.MaxBacklog > 0 && p.pubReadings.Load()-p.stored.Load() > p.spec.MaxBacklog {
			select {
			case <-time.After(time.Millisecond):
			case <-ctx.Done():
				<-slots
				return
			}
		}
		if !c.cl.IsConnectionOpen() {
			// Lost (logged by the handler): publishing on would only fail.
			<-slots
			return
		}
		dm := c.msgs[c.dev]
		m := dm[c.next[c.dev]]
		c.next[c.dev] = (c.next[c.dev] + 1) % len(dm)
		c.dev = (c.dev + 1) % len(c.msgs)
		t0 := time.Now()
		tok := c.cl.Publish(m.topic, 1, false, m.payload)
		p.published.Add(1)
		p.pubReadings.Add(int64(m.readings))
		pending <- inflight{tok: tok, t0: t0, readings: m.readings}
	}
}

func (p *publisher) noteErr(err error) {
	s := err.Error()
	p.firstErr.CompareAndSwap(nil, &s)
}

// mark returns the counters and the latency percentiles since the last
// mark.
func (p *publisher) mark() *publishStat {
	var lat []float64
	for _, c := range p.conns {
		c.mu.Lock()
		lat = append(lat, c.lat...)
		c.lat = c.lat[:0]
		c.mu.Unlock()
	}
	st := &publishStat{
		Published: p.published.Load(), Acked: p.acked.Load(), AckedReadings: p.ackedReadings.Load(),
		Failed: p.failed.Load(), CPUNanos: int64(procstat.SelfCPU()), LatSamples: len(lat),
	}
	if e := p.firstErr.Load(); e != nil {
		st.FirstError = *e
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		st.LatP50ms, st.LatP99ms, st.LatMaxms = report.Quantile(lat, 0.50), report.Quantile(lat, 0.99), lat[len(lat)-1]
	}
	return st
}

// stop ends publishing and waits for every publish in flight to be
// acknowledged (or to fail), then disconnects. Safe to call more than once.
func (p *publisher) stop() {
	if p.cancel != nil {
		p.cancel()
		t := time.AfterFunc(stopGrace, func() { p.abandonOnce.Do(func() { close(p.abandon) }) })
		p.wg.Wait()
		t.Stop()
	}
	p.disconnect()
}

func (p *publisher) disconnect() {
	var wg sync.WaitGroup
	for _, c := range p.conns {
		if c.cl != nil && c.cl.IsConnectionOpen() {
			wg.Go(func() { c.cl.Disconnect(250) })
		}
	}
	wg.Wait()
}
