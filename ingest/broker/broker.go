// Package broker is the gateway's embedded MQTT broker (mochi-mqtt), the
// default way sensors reach the gateway. It authenticates every client
// against bcrypt hashes from the config (anonymous clients only when the
// config allows them), confines each device to its own topics, and hands
// every publish to the ingest pipeline before acknowledging it.
//
// On a facility LAN every port faces hostile clients, so the broker also
// bounds what one client or one login can cost: connections in total and
// per address and a CONNECT deadline (listener.go), a packet size checked
// before anything is allocated (per account once logged in), failed logins
// throttled per address and per username with a cap on concurrent bcrypt
// checks (login.go), a client id bound to the user that holds it, sessions
// capped per user and kept at most MaxSessionExpiry (sessions.go), a will
// only where its client may publish, and retained messages only where the
// account may retain. Refusals answer the CONNACK with the reason code
// (bad username or password, not authorized, server busy, connection rate
// exceeded); see hook.go.
//
// "PUBACK means on disk": mochi runs the OnPublish hook on the publishing
// client's own goroutine before it writes the PUBACK, and the hook returns
// only once the pipeline has fsynced the readings. A slow disk therefore
// slows only the clients that are waiting for it, and when the store fails
// the message is not acknowledged and the client's connection is closed so
// that it resends after reconnecting.
package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
)

// Account is one identity allowed to connect: a device (whose topics come
// from its payload format) or a configured user (a Zigbee2MQTT bridge, a
// siren, a panel).
type Account struct {
	Username     string
	PasswordHash string // bcrypt
	Publish      []string
	Subscribe    []string
	// Retain are the filters where the account's publishes and will keep
	// their retain flag (availability and LWT topics). Elsewhere a
	// retained publish is delivered, and stored, as a plain one.
	Retain []string
	// MaxPacketBytes replaces Options.MaxPacketBytes once the account has
	// logged in (0: Options.MaxPacketBytes). A Zigbee2MQTT bridge's
	// bridge/devices can be larger than any sensor's packet.
	MaxPacketBytes uint32
	// ClientIDs are reserved for this account: no other login (nor an
	// anonymous client) may connect with them, even while the account
	// is offline, so a Zigbee2MQTT bridge restarting cannot find its id
	// taken by someone else.
	ClientIDs []string
}

// Options configure the broker.
type Options struct {
	// Listen is the TCP address ("127.0.0.1:1883"; port 0 picks a free one).
	// Empty disables plain TCP.
	Listen string
	// TLSListen with TLSConfig enables an MQTT-over-TLS listener.
	TLSListen string
	TLSConfig *tls.Config
	// AllowAnonymous lets clients without a username publish device data.
	// Off by default: a facility network is not a trusted network.
	AllowAnonymous bool
	// AnonymousPublish are the filters anonymous clients may publish to,
	// AnonymousRetain those where they may retain. Anonymous clients get
	// no persistent session: theirs ends at disconnect.
	AnonymousPublish []string
	AnonymousRetain  []string
	// MaxPacketBytes refuses longer packets before reading them (0: no
	// limit). It applies to everything a client sends until it has logged
	// in, and after that unless its account has its own.
	MaxPacketBytes uint32
	// MaxSessionExpiry caps how long a disconnected client's session is
	// kept, MQTT 3.1.1 clean_session=false included (0: for ever).
	MaxSessionExpiry time.Duration
	// MaxSessionsPerUser caps the sessions, connected or kept, of one
	// username (0: no cap). At the cap the user's oldest disconnected
	// session ends to make room; with none, the CONNECT is refused.
	MaxSessionsPerUser int
	// Login bounds what failed logins cost.
	Login LoginLimits
	// Now is the clock of the login throttle (nil: time.Now).
	Now func() time.Time
	// Limits bound connections before they log in.
	Limits   ConnLimits
	Accounts []Account
	// Handle receives every publish from a client; nil error means the
	// message may be acknowledged (see pipeline.Pipeline.Handle).
	Handle func(ctx context.Context, msg pipeline.Message) error
	// HandleAsync, when set, is used instead of Handle for clients'
	// publishes: the client's PUBACK is sent when it calls done with nil
	// (see pipeline.Pipeline.HandleAsync), and the broker goes on reading
	// the client's next publishes meanwhile, up to AckWindow of them.
	HandleAsync func(ctx context.Context, msg pipeline.Message, done func(error))
	// AckWindow is how many publishes of one client may wait for their
	// acknowledgement before the broker stops reading from it (default 8;
	// only with HandleAsync).
	AckWindow int
	Logger    *slog.Logger
}

// clientWriteTimeout bounds every write to a client (mochi patch 8).
const clientWriteTimeout = 3 * time.Second

// Broker is a running embedded broker.
type Broker struct {
	server   *mqtt.Server
	tcp, tls *guardedTCP
	hook     *hook
	ctx      context.Context
	cancel   context.CancelFunc
	serveErr chan error

	closeOnce sync.Once
	closeErr  error
}

// New configures a broker; Start opens its listeners.
func New(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Handle == nil {
		return nil, errors.New("broker: no message handler")
	}
	if opts.Listen == "" && opts.TLSListen == "" {
		return nil, errors.New("broker: no listener configured")
	}
	if opts.TLSListen != "" && opts.TLSConfig == nil {
		return nil, errors.New("broker: TLS listener without TLS configuration")
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// Sensors do not need retained $SYS chatter, and QoS 2 adds a round trip
	// for nothing: our handler is idempotent enough with QoS 1 redelivery.
	caps.MaximumQos = 1
	// mochi buffers up to this many outbound packets per client; its default
	// of 8192 costs 64 KiB per connection (64 MB at 1,000 sensors). Sensors
	// receive next to nothing; a siren or panel gets alarm states, a few
	// per minute.
	caps.MaximumClientWritesPending = 256
	// mochi checks the length a fixed header claims against this before
	// allocating it: without it four 5-byte headers claiming 256 MB each
	// take the heap past 1 GB.
	caps.MaximumPacketSize = opts.MaxPacketBytes
	if opts.MaxSessionExpiry > 0 {
		// mochi applies it to MQTT 5 clients' requested expiry and, as
		// the expiry itself, to MQTT 3.1.1 clean_session=false sessions.
		caps.MaximumSessionExpiryInterval = uint32(min(max(opts.MaxSessionExpiry/time.Second, 1), math.MaxUint32))
	}
	window, workers := 0, 0
	if opts.HandleAsync != nil {
		// Publishes are handled by a few workers, so a connection's own
		// goroutine only reads, on a stack of a few KiB instead of the
		// 32 KiB that mochi's publish path takes (mochi patch 8). A
		// worker never waits for the disk (the acknowledgement is
		// deferred); per client, order is kept.
		workers = max(4, 2*runtime.GOMAXPROCS(0))
		// Each waiting publish costs its packet and a little state; the
		// read loop waits for a free slot before reading on, with a
		// shallow stack (a thousand clients each blocked deep inside the
		// store's wait were 23 KiB of stack apiece).
		window = opts.AckWindow
		if window <= 0 {
			window = 8
		}
	}
	server := mqtt.New(&mqtt.Options{
		// Sensors' packets are a few hundred bytes; mochi's 2 KiB read
		// buffer per connection is 2 MB at 1,000 sensors (larger packets
		// are read past the buffer).
		ClientNetReadBufferSize: 1024,
		DeferredAckWindow:       window,
		PublishWorkers:          workers,
		// A client that does not take a write within this is broken or
		// hostile; it must not hold a publish worker (or its own writer)
		// for longer.
		ClientWriteTimeout: clientWriteTimeout,
		InlineClient:       true,
		Capabilities:       caps,
		// mochi logs every connection at info and every refused packet,
		// payload included, at warn; our hook logs what matters itself.
		Logger: slog.New(levelFilter{opts.Logger.Handler(), slog.LevelError}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	h, err := newHook(opts, ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	h.server = server
	h.disconnect = func(cl *mqtt.Client, err error) { cl.Stop(err) }
	if err := server.AddHook(h, nil); err != nil {
		cancel()
		return nil, fmt.Errorf("broker: add hook: %w", err)
	}
	b := &Broker{server: server, hook: h, ctx: ctx, cancel: cancel, serveErr: make(chan error, 1)}
	if opts.Listen != "" {
		b.tcp = newGuardedTCP("tcp", opts.Listen, nil, opts.Limits, h.connRefused)
		if err := server.AddListener(b.tcp); err != nil {
			cancel()
			return nil, fmt.Errorf("broker: listen on %s: %w", opts.Listen, err)
		}
	}
	if opts.TLSListen != "" {
		b.tls = newGuardedTCP("tls", opts.TLSListen, opts.TLSConfig, opts.Limits, h.connRefused)
		if err := server.AddListener(b.tls); err != nil {
			cancel()
			return nil, fmt.Errorf("broker: TLS listen on %s: %w", opts.TLSListen, err)
		}
	}
	return b, nil
}

// Start serves clients in the background.
func (b *Broker) Start() error {
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("broker: serve: %w", err)
	}
	return nil
}

// Addr is the bound TCP address ("" when disabled).
func (b *Broker) Addr() string {
	if b.tcp == nil {
		return ""
	}
	return b.tcp.Address()
}

// TLSAddr is the bound TLS address ("" when disabled).
func (b *Broker) TLSAddr() string {
	if b.tls == nil {
		return ""
	}
	return b.tls.Address()
}

// Publish publishes from the gateway itself (alarm state for sirens and
// panels). It does not pass through the ingest pipeline.
func (b *Broker) Publish(topic string, payload []byte, retain bool, qos byte) error {
	return b.server.Publish(topic, payload, retain, qos)
}

// Register registers the broker's metrics with reg.
func (b *Broker) Register(reg prometheus.Registerer) error {
	h := b.hook
	for _, c := range []prometheus.Collector{h.authFailures, h.aclDenied, h.notAcked, h.connRefused,
		h.passwordChecks, h.sessionsEvicted, h.retainCleared,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelterwatch_broker_clients_connected",
			Help: "MQTT clients connected to the embedded broker."},
			func() float64 { return float64(atomic.LoadInt64(&b.server.Info.ClientsConnected)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelterwatch_broker_sessions",
			Help: "MQTT sessions on the embedded broker, connected or kept for a disconnected client."},
			func() float64 { return float64(h.sessions.len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelterwatch_broker_retained_messages",
			Help: "Retained messages held by the embedded broker."},
			func() float64 { return float64(b.server.Topics.Retained.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelterwatch_broker_subscriptions",
			Help: "Topic subscriptions held by the embedded broker's sessions."},
			func() float64 { return float64(atomic.LoadInt64(&b.server.Info.Subscriptions)) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Close disconnects every client and stops the listeners (once; later
// calls return the first result). Publishes being
// handled finish first: mochi waits for client goroutines.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.close() })
	return b.closeErr
}

func (b *Broker) close() error {
	closed := make(chan error, 1)
	go func() { closed <- b.server.Close() }()
	select {
	case err := <-closed:
		b.cancel()
		return err
	case <-time.After(time.Second):
		// A publish held in its hook (the store waits for disk space)
		// keeps its client from closing: end the wait. The publish is
		// not acknowledged, so its sender sends it again.
		b.cancel()
		return <-closed
	}
}

// levelFilter drops records below min (mochi's per-connection info logs).
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(as []slog.Attr) slog.Handler {
	return levelFilter{f.Handler.WithAttrs(as), f.min}
}

func (f levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{f.Handler.WithGroup(name), f.min}
}
