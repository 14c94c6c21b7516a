// Package forward sends every reading in the durable store to InfluxDB,
// at least once and idempotently, so InfluxDB ends up holding each reading
// exactly once however long it was out of reach.
//
// # Delivery
//
// A Forwarder serves one InfluxDB target. It reads the store's log from its
// own durable cursor ("influx:<target>"), encodes batches in line protocol
// (schema in lineproto.go), writes them with influxdb-client-go's
// WriteAPIBlocking, and moves the cursor only after InfluxDB has confirmed
// the batch. The client's asynchronous WriteAPI is not used: it keeps
// retries in memory, drops the oldest batch when its buffer fills and
// discards queued batches on Close. Here nothing is held only in memory:
// what has not been confirmed is still in the store and is read again after
// a restart. Re-sending is harmless because a point with the same series
// and timestamp overwrites itself.
//
// # Errors
//
//   - Network errors, timeouts and 5xx: retried with capped exponential
//     backoff and full jitter; 429 and 503 wait for Retry-After when the
//     server sends one.
//   - 413 (batch too large): the batch is split in halves and each is sent.
//   - 400/422 about the points themselves (a field type conflict, a point
//     outside the retention policy, unparseable line protocol): the batch is
//     bisected until the points InfluxDB refuses are isolated; exactly those
//     go to the dead-letter store with the server's message and the rest are
//     delivered. A bad point never stalls the queue.
//   - 401/403, 404 (unknown bucket or database) and other 400s (a
//     configuration problem such as a malformed bucket name): retried for
//     ever with a loud error and a metric. Dropping data because a token
//     expired would be wrong.
//
// # Backlog
//
// When the forwarder finds itself more than a few batches behind (InfluxDB
// was away), it splits into two lanes: live readings, those that arrived
// after the backlog was noticed, are sent first as they come, and the
// backlog drains in the remaining turns, each lane in order of arrival. The
// durable cursor only covers the contiguous prefix (the backlog lane), so a
// restart in the middle replays the live lane's part too, idempotently.
package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	influxdb2 "github.com/influxdata/influxdb-client-go/v2"
	"github.com/influxdata/influxdb-client-go/v2/api"
	ihttp "github.com/influxdata/influxdb-client-go/v2/api/http"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/backoff"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// Target is one InfluxDB to forward to.
type Target struct {
	// Name identifies the target in metrics, logs and its cursor name.
	Name string
	// URL is the server's base URL, e.g. http://127.0.0.1:8086.
	URL string
	// Org and Bucket name where points go. For InfluxDB 1.8+ Org is empty
	// and Bucket is "database/retention-policy" (or just "database").
	Org    string
	Bucket string
	// Token authenticates: an API token for InfluxDB 2.x/3.x, or
	// "user:password" for 1.8 with authentication on. Never logged.
	Token string
	// MeasurementPrefix is put in front of each kind to name measurements.
	MeasurementPrefix string

	// BatchSize caps the points per write (default 5000).
	BatchSize int
	// Linger is how long a partial batch of live readings may wait for
	// more (default 1s).
	Linger time.Duration
	// Timeout bounds one write request (default 10s).
	Timeout time.Duration
	// GZip compresses request bodies (worth it on 4G links).
	GZip bool
	// BackoffMin and BackoffMax bound the retry delay (defaults 500ms, 1m).
	BackoffMin, BackoffMax time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured
	// (default 10m).
	MaxRetryAfter time.Duration
	// TLS configures https URLs (nil: system roots).
	TLS *tls.Config
}

// Defaults of a Target; the gateway's config applies the same ones.
const (
	// DefaultBatchSize: InfluxDB advises batches of 5,000-10,000 points.
	DefaultBatchSize  = 5000
	DefaultLinger     = time.Second
	DefaultTimeout    = 10 * time.Second
	DefaultBackoffMax = time.Minute
)

func (t *Target) defaults() {
	if t.BatchSize <= 0 {
		t.BatchSize = DefaultBatchSize
	}
	if t.Linger < 0 {
		t.Linger = 0
	} else if t.Linger == 0 {
		t.Linger = DefaultLinger
	}
	if t.Timeout <= 0 {
		t.Timeout = DefaultTimeout
	}
	if t.BackoffMin <= 0 {
		t.BackoffMin = 500 * time.Millisecond
	}
	if t.BackoffMax <= 0 {
		t.BackoffMax = DefaultBackoffMax
	}
	if t.MaxRetryAfter <= 0 {
		t.MaxRetryAfter = 10 * time.Minute
	}
}

// Options wire a Forwarder.
type Options struct {
	Store  *store.Store
	Target Target
	Logger *slog.Logger
	// NoLinger sends partial batches at once (tests and benchmarks that
	// want the lowest latency); the target's Linger is ignored.
	NoLinger bool
	// Health, when set, receives the target's condition (see watch).
	Health Health
	// StalledAfter is how old the oldest unforwarded reading may get
	// before the target counts as stalled (default DefaultStalledAfter).
	StalledAfter time.Duration
}

// Health receives the condition of the gateway's parts (the gateway's
// fault reporter, ingest/health).
type Health interface {
	Set(device, condition string)
}

// Retry reasons, as in the shelterwatch_forward_retries_total metric.
const (
	RetryNetwork   = "network"    // no HTTP answer: refused, reset, timeout
	RetryServer    = "server"     // 5xx other than 503
	RetryThrottled = "throttled"  // 429 or 503
	RetryAuth      = "auth"       // 401 or 403
	RetryConfig    = "config"     // 404 and 4xx that are not about the points
	RetryTooLarge  = "too_large"  // 413: the batch was split
	RetryRejected  = "rejected"   // 400/422 about points: the batch was bisected
	RetryUnknown   = "unexpected" // any other status
)

var retryReasons = []string{RetryNetwork, RetryServer, RetryThrottled, RetryAuth, RetryConfig, RetryTooLarge, RetryRejected, RetryUnknown}

// Forwarder forwards the store's log to one target. Run owns all of its
// delivery state; Status may be called from any goroutine.
type Forwarder struct {
	opts   Options
	t      Target
	st     *store.Store
	log    *slog.Logger
	limit  *ratelog.Limiter
	client influxdb2.Client
	hc     *http.Client
	write  api.WriteAPIBlocking
	cursor string

	// Owned by Run.
	done     uint64 // durable: every reading up to here is in InfluxDB
	split    bool   // a backlog is draining in its own lane
	liveFrom uint64 // backlog lane covers (done, liveFrom]
	liveDone uint64 // live lane has delivered (liveFrom, liveDone]
	liveTurn bool
	buf      []byte
	ends     []int

	// Read by Status.
	posDone, posLiveFrom, posLiveDone atomic.Uint64
	splitting                         atomic.Bool
	oldestPending                     atomic.Int64 // Received (Unix ns) of the oldest unsent reading; 0: none
	lastSuccess                       atomic.Int64
	written, deadLettered             atomic.Uint64
	retries                           map[string]*atomic.Uint64
	authFailing                       atomic.Bool
	mu                                sync.Mutex
	state                             string
	lastErr                           string
}

// New builds a Forwarder; it does not contact InfluxDB until Run.
func New(opts Options) (*Forwarder, error) {
	t := opts.Target
	t.defaults()
	if t.Name == "" || t.URL == "" || t.Bucket == "" {
		return nil, errors.New("forward: target needs a name, a URL and a bucket")
	}
	if opts.Store == nil {
		return nil, errors.New("forward: no store")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("target", t.Name)
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(t.Timeout, 10*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       t.TLS,
		TLSHandshakeTimeout:   min(t.Timeout, 10*time.Second),
		ResponseHeaderTimeout: t.Timeout,
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       90 * time.Second,
	}
	if t.GZip {
		rt = newGzipTransport(rt) // not the client library's (gzip.go)
	}
	hc := &http.Client{Timeout: t.Timeout, Transport: rt}
	copts := influxdb2.DefaultOptions().
		SetHTTPClient(hc).
		SetUseGZip(false).
		SetPrecision(time.Nanosecond).
		SetLogLevel(0).
		SetApplicationName("shelterwatch")
	client := influxdb2.NewClientWithOptions(t.URL, t.Token, copts)
	f := &Forwarder{
		hc:      hc,
		opts:    opts,
		t:       t,
		st:      opts.Store,
		log:     log,
		limit:   ratelog.New(time.Minute),
		client:  client,
		write:   client.WriteAPIBlocking(t.Org, t.Bucket),
		cursor:  CursorName(t.Name),
		retries: map[string]*atomic.Uint64{},
		state:   "starting",
	}
	for _, r := range retryReasons {
		f.retries[r] = new(atomic.Uint64)
	}
	return f, nil
}

// CursorName is the store cursor of the target called name.
func CursorName(name string) string { return "influx:" + name }

// Name returns the target's name.
func (f *Forwarder) Name() string { return f.t.Name }

// Run forwards until ctx ends. It returns nil on cancellation and an error
// only when the store fails.
func (f *Forwarder) Run(ctx context.Context) error {
	defer f.hc.CloseIdleConnections() // the client's Close leaves them to time out
	defer f.client.Close()
	if f.opts.Health != nil {
		wctx, stop := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() { defer close(watched); f.watch(wctx, watchEvery) }()
		defer func() { stop(); <-watched }()
	}
	f.done = f.st.Cursor(f.cursor)
	// Register the cursor at once, so the store's disk budget knows this
	// consumer even before its first delivery.
	if err := f.st.SetCursor(f.cursor, f.done); err != nil {
		return fmt.Errorf("forward %s: register cursor: %w", f.t.Name, err)
	}
	f.posDone.Store(f.done)
	f.log.Info("forward: starting", "url", redactURL(f.t.URL), "bucket", f.t.Bucket, "from_seq", f.done)
	for {
		rs, live, err := f.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := f.deliver(ctx, rs); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if err := f.advance(rs, live); err != nil {
			return err
		}
	}
}

// splitAfter is how many batches behind the forwarder must be before live
// readings get their own lane.
const splitAfter = 4

// next returns the next batch to send and whether it is from the live
// lane. It blocks until there is one.
func (f *Forwarder) next(ctx context.Context) ([]reading.Reading, bool, error) {
	bs := f.t.BatchSize
	for {
		changed := f.st.Changed()
		head := f.st.LastSeq()
		if !f.split && head > f.done+uint64(splitAfter*bs) {
			f.split, f.liveFrom, f.liveDone = true, head, head
			f.posLiveFrom.Store(head)
			f.posLiveDone.Store(head)
			f.splitting.Store(true)
			f.log.Warn("forward: behind, draining the backlog while live readings go first",
				"backlog_readings", head-f.done)
		}
		if f.split {
			f.liveTurn = !f.liveTurn
			if f.liveTurn && f.liveDone < head {
				rs, err := f.st.ReadLog(f.liveDone, bs)
				if err != nil {
					return nil, false, fmt.Errorf("forward %s: %w", f.t.Name, err)
				}
				if len(rs) > 0 {
					return rs, true, nil
				}
			}
			if f.done < f.liveFrom {
				rs, err := f.st.ReadLog(f.done, bs)
				if err != nil {
					return nil, false, fmt.Errorf("forward %s: %w", f.t.Name, err)
				}
				for len(rs) > 0 && rs[len(rs)-1].Seq > f.liveFrom {
					rs = rs[:len(rs)-1]
				}
				if len(rs) > 0 {
					f.oldestPending.Store(rs[0].Received.UnixNano())
					return rs, false, nil
				}
			}
			if f.done >= f.liveFrom || f.st.FirstSeq() > f.liveFrom {
				// The backlog is delivered (or was deleted by retention):
				// the lanes join again at the live lane's position.
				f.done = max(f.done, f.liveDone)
				f.split = false
				f.splitting.Store(false)
				if err := f.st.SetCursor(f.cursor, f.done); err != nil {
					return nil, false, fmt.Errorf("forward %s: %w", f.t.Name, err)
				}
				f.posDone.Store(f.done)
				f.log.Info("forward: backlog drained", "seq", f.done)
			}
			continue
		}
		if f.done >= head {
			f.oldestPending.Store(0)
			f.setState("idle", "")
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
		}
		rs, err := f.st.ReadLog(f.done, bs)
		if err != nil {
			return nil, false, fmt.Errorf("forward %s: %w", f.t.Name, err)
		}
		if len(rs) == 0 {
			// Everything after the cursor was deleted by retention.
			f.done = head
			continue
		}
		f.oldestPending.Store(rs[0].Received.UnixNano())
		if len(rs) < bs && !f.opts.NoLinger {
			// Wait a little for a fuller batch, but never past the
			// linger of the oldest reading in it.
			deadline := rs[0].Received.Add(f.t.Linger)
			if wait := time.Until(deadline); wait > 0 {
				if err := f.linger(ctx, wait, f.done+uint64(bs)); err != nil {
					return nil, false, err
				}
				continue
			}
		}
		return rs, false, nil
	}
}

// linger waits up to d, or until the log reaches seq full.
func (f *Forwarder) linger(ctx context.Context, d time.Duration, full uint64) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		changed := f.st.Changed()
		if f.st.LastSeq() >= full {
			return nil
		}
		select {
		case <-timer.C:
			return nil
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// advance records a delivered batch.
func (f *Forwarder) advance(rs []reading.Reading, live bool) error {
	last := rs[len(rs)-1].Seq
	f.lastSuccess.Store(time.Now().UnixNano())
	if live {
		f.liveDone = last
		f.posLiveDone.Store(last)
		return nil
	}
	if err := f.st.SetCursor(f.cursor, last); err != nil {
		return fmt.Errorf("forward %s: %w", f.t.Name, err)
	}
	f.done = last
	f.posDone.Store(last)
	// The next unsent reading arrived after the last one delivered.
	f.oldestPending.Store(rs[len(rs)-1].Received.UnixNano())
	if !f.split && f.done >= f.st.LastSeq() {
		f.oldestPending.Store(0)
	}
	return nil
}

// encode writes rs as line protocol into f.buf; f.ends[i] is the end of
// line i (its newline included).
func (f *Forwarder) encode(rs []reading.Reading) {
	f.buf, f.ends = f.buf[:0], f.ends[:0]
	for i := range rs {
		f.buf = appendLine(f.buf, f.t.MeasurementPrefix, &rs[i])
		f.buf = append(f.buf, '\n')
		f.ends = append(f.ends, len(f.buf))
	}
}

// deliver sends rs until InfluxDB has taken every point or refused exactly
// the ones it will never take. It returns only when ctx ends or the store
// fails.
func (f *Forwarder) deliver(ctx context.Context, rs []reading.Reading) error {
	f.encode(rs)
	return f.send(ctx, rs, 0, len(rs))
}

// send delivers rs[lo:hi], whose lines are f.buf[start(lo):f.ends[hi-1]].
func (f *Forwarder) send(ctx context.Context, rs []reading.Reading, lo, hi int) error {
	start := 0
	if lo > 0 {
		start = f.ends[lo-1]
	}
	body := string(f.buf[start : f.ends[hi-1]-1]) // without the last newline
	n := hi - lo
	for attempt := 0; ; attempt++ {
		f.setState("sending", "")
		werr := f.write.WriteRecord(ctx, body)
		if werr == nil {
			f.written.Add(uint64(n))
			if f.authFailing.Swap(false) {
				f.log.Info("forward: InfluxDB accepts our credentials again")
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c := classify(werr)
		f.retries[c.reason].Add(1)
		switch c.reason {
		case RetryTooLarge:
			if n > 1 {
				f.log.Warn("forward: batch too large for the server, splitting", "points", n)
				mid := lo + n/2
				if err := f.send(ctx, rs, lo, mid); err != nil {
					return err
				}
				return f.send(ctx, rs, mid, hi)
			}
			return f.reject(ctx, &rs[lo], body, c.msg)
		case RetryRejected:
			if n > 1 {
				mid := lo + n/2
				if err := f.send(ctx, rs, lo, mid); err != nil {
					return err
				}
				return f.send(ctx, rs, mid, hi)
			}
			return f.reject(ctx, &rs[lo], body, c.msg)
		}
		wait := backoff.Delay(attempt, f.t.BackoffMin, f.t.BackoffMax)
		if c.retryAfter > 0 {
			wait = min(c.retryAfter, f.t.MaxRetryAfter)
		}
		switch c.reason {
		case RetryAuth, RetryConfig:
			f.authFailing.Store(c.reason == RetryAuth)
			// Loud, but not once per retry: a rejected token can last for
			// hours.
			f.logLimited(slog.LevelError, c.reason, "forward: InfluxDB refuses our writes; fix the target's configuration (nothing is dropped, retrying)",
				"status", c.status, "error", c.msg, "retry_in", wait.Round(time.Millisecond))
		default:
			f.logLimited(slog.LevelWarn, c.reason, "forward: write failed, retrying",
				"reason", c.reason, "status", c.status, "error", c.msg, "points", n, "retry_in", wait.Round(time.Millisecond))
		}
		f.setState("retrying", fmt.Sprintf("%s: %s", c.reason, c.msg))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
}

// reject dead-letters one reading InfluxDB refuses, with the server's
// message, so the queue moves on. The reading stays in the local store.
func (f *Forwarder) reject(ctx context.Context, r *reading.Reading, line, msg string) error {
	f.log.Error("forward: InfluxDB rejected a reading; kept in the dead-letter store",
		"device", r.Device, "kind", r.Kind, "seq", r.Seq, "error", msg)
	err := f.st.AddDeadLetterWait(ctx, store.DeadLetter{
		Time:    time.Now(),
		Topic:   "influx/" + f.t.Name,
		Device:  r.Device,
		Reason:  ReasonRejected,
		Error:   msg,
		Payload: []byte(line),
	})
	if err != nil {
		return fmt.Errorf("forward %s: dead-letter seq %d: %w", f.t.Name, r.Seq, err)
	}
	f.deadLettered.Add(1)
	return nil
}

// ReasonRejected is the dead-letter reason of readings InfluxDB refused.
const ReasonRejected = "influx_rejected"

type classified struct {
	reason     string
	status     int
	msg        string
	retryAfter time.Duration
}

// pointProblems are phrases InfluxDB (1.x and 2.x) uses when it refuses
// points rather than the request: only these make a 400/422 bisect and
// dead-letter. Any other 400 (a malformed bucket, a bad precision) is a
// configuration problem and must not throw readings away.
var pointProblems = []string{"partial write", "unable to parse", "failed to parse", "field type conflict", "beyond retention", "invalid field", "invalid tag", "invalid number", "invalid boolean", "points were dropped"}

func classify(err error) classified {
	var he *ihttp.Error
	if !errors.As(err, &he) || he.StatusCode == 0 {
		return classified{reason: RetryNetwork, msg: err.Error()}
	}
	c := classified{status: he.StatusCode, msg: he.Message}
	if c.msg == "" {
		c.msg = he.Error()
	}
	if he.RetryAfter > 0 {
		c.retryAfter = time.Duration(he.RetryAfter) * time.Second
	}
	switch s := he.StatusCode; {
	case s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable:
		c.reason = RetryThrottled
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		c.reason = RetryAuth
	case s == http.StatusRequestEntityTooLarge:
		c.reason = RetryTooLarge
	case s == http.StatusBadRequest || s == http.StatusUnprocessableEntity:
		c.reason = RetryConfig
		lower := strings.ToLower(c.msg)
		for _, p := range pointProblems {
			if strings.Contains(lower, p) {
				c.reason = RetryRejected
				break
			}
		}
	case s >= 500:
		c.reason = RetryServer
	case s >= 400:
		c.reason = RetryConfig
	default:
		c.reason = RetryUnknown
	}
	return c
}

// logLimited logs at most one line per reason and minute, with how many
// were held back: a target can be away for hours.
func (f *Forwarder) logLimited(level slog.Level, key, msg string, args ...any) {
	if n, ok := f.limit.AllowCount(key); ok {
		if n > 0 {
			args = append(args, "repeats_suppressed", n)
		}
		f.log.Log(context.Background(), level, msg, args...)
	}
}

func (f *Forwarder) setState(state, lastErr string) {
	f.mu.Lock()
	f.state = state
	if lastErr != "" {
		f.lastErr = lastErr
	}
	f.mu.Unlock()
}

// Status is a snapshot of a forwarder, for the API, metrics and the rules
// engine (a backlog growing old is the forward-stalled alarm).
type Status struct {
	Target string `json:"target"`
	// State is starting, idle, sending or retrying.
	State string `json:"state"`
	// Cursor is the durable position: every reading up to it is in
	// InfluxDB.
	Cursor uint64 `json:"cursor"`
	// Draining says a backlog is being sent in its own lane.
	Draining bool `json:"draining"`
	// BacklogPoints is how many readings are stored but not yet confirmed
	// by InfluxDB; BacklogAge how long the oldest of them has waited.
	BacklogPoints uint64        `json:"backlog_points"`
	BacklogAge    time.Duration `json:"backlog_age_ns"`
	LastSuccess   time.Time     `json:"last_success"`
	LastError     string        `json:"last_error,omitempty"`
	AuthFailing   bool          `json:"auth_failing"`
	Written       uint64        `json:"points_written"`
	DeadLettered  uint64        `json:"dead_lettered"`
	Retries       uint64        `json:"retries"`
}

// Status returns the forwarder's current status.
func (f *Forwarder) Status() Status {
	head := f.st.LastSeq()
	done := f.posDone.Load()
	s := Status{Target: f.t.Name, Cursor: done, Draining: f.splitting.Load(),
		AuthFailing: f.authFailing.Load(), Written: f.written.Load(), DeadLettered: f.deadLettered.Load()}
	if s.Draining {
		from, live := f.posLiveFrom.Load(), f.posLiveDone.Load()
		s.BacklogPoints = sub(from, done) + sub(head, live)
	} else {
		s.BacklogPoints = sub(head, done)
	}
	if first := f.st.FirstSeq(); first > done+1 && !s.Draining {
		// Readings deleted before they were sent are no longer a backlog
		// (the store counted them as lost).
		s.BacklogPoints = sub(head, first-1)
	}
	if o := f.oldestPending.Load(); o > 0 && s.BacklogPoints > 0 {
		s.BacklogAge = max(time.Since(time.Unix(0, o)), 0)
	}
	if l := f.lastSuccess.Load(); l > 0 {
		s.LastSuccess = time.Unix(0, l)
	}
	for _, r := range f.retries {
		s.Retries += r.Load()
	}
	f.mu.Lock()
	s.State, s.LastError = f.state, f.lastErr
	f.mu.Unlock()
	return s
}

func sub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// redactURL drops any credentials from a URL for logging.
func redactURL(u string) string {
	if i := strings.Index(u, "@"); i >= 0 {
		if j := strings.Index(u, "://"); j >= 0 && j < i {
			return u[:j+3] + "[redacted]@" + u[i+1:]
		}
	}
	return u
}
