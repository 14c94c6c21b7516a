// Package broker is the gateway's embedded MQTT broker (mochi-mqtt), the
// default way sensors reach the gateway. It authenticates every client
// against bcrypt hashes from the config (anonymous clients only when the
// config allows them), confines each device to its own topics, and hands
// every publish to the ingest pipeline before acknowledging it.
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
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// Account is one identity allowed to connect: a device (whose topics come
// from its payload format) or a configured user (a Zigbee2MQTT bridge, a
// siren, a panel).
type Account struct {
	Username     string
	PasswordHash string // bcrypt
	Publish      []string
	Subscribe    []string
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
	// AnonymousPublish are the filters anonymous clients may publish to.
	AnonymousPublish []string
	// MaxPacketBytes refuses longer packets before reading them (0: no
	// limit).
	MaxPacketBytes uint32
	// Limits bound connections before they log in.
	Limits   ConnLimits
	Accounts []Account
	// Handle receives every publish from a client; nil error means the
	// message may be acknowledged (see pipeline.Pipeline.Handle).
	Handle func(ctx context.Context, msg pipeline.Message) error
	Logger *slog.Logger
}

// Broker is a running embedded broker.
type Broker struct {
	server   *mqtt.Server
	tcp, tls *guardedTCP
	hook     *hook
	ctx      context.Context
	cancel   context.CancelFunc
	serveErr chan error
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
	server := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
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
	for _, c := range []prometheus.Collector{b.hook.authFailures, b.hook.aclDenied, b.hook.notAcked, b.hook.connRefused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shelterwatch_broker_clients_connected",
			Help: "MQTT clients connected to the embedded broker."},
			func() float64 { return float64(atomic.LoadInt64(&b.server.Info.ClientsConnected)) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Close disconnects every client and stops the listeners. Publishes being
// handled finish first: mochi waits for client goroutines.
func (b *Broker) Close() error {
	err := b.server.Close()
	b.cancel()
	return err
}

// hook implements authentication, ACLs and the hand-off to the pipeline.
type hook struct {
	mqtt.HookBase
	opts         Options
	ctx          context.Context
	accounts     map[string]*Account
	log          *slog.Logger
	limiter      *ratelog.Limiter
	authFailures *prometheus.CounterVec
	aclDenied    prometheus.Counter
	notAcked     prometheus.Counter
	connRefused  *prometheus.CounterVec
	disconnect   func(cl *mqtt.Client, err error)

	// verified caches username → sha256(password) of successful bcrypt
	// checks, so a reconnect storm of hundreds of sensors after a power cut
	// does not pin the CPU on bcrypt. The cache holds digests, never
	// passwords.
	mu       sync.Mutex
	verified map[string][32]byte
}

func newHook(opts Options, ctx context.Context) (*hook, error) {
	h := &hook{
		opts:     opts,
		ctx:      ctx,
		accounts: make(map[string]*Account, len(opts.Accounts)),
		log:      opts.Logger,
		limiter:  ratelog.New(10 * time.Second),
		verified: make(map[string][32]byte),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_broker_auth_failures_total", Help: "Refused MQTT connections, by reason."},
			[]string{"reason"}),
		aclDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_acl_denied_total", Help: "Publishes and subscriptions refused by topic ACLs."}),
		notAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_publish_not_acked_total", Help: "Publishes not acknowledged because they could not be stored."}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_broker_connections_refused_total", Help: "TCP connections closed at accept, by the limit they hit."},
			[]string{"reason"}),
	}
	for _, r := range []string{"unknown_user", "bad_password", "anonymous"} {
		h.authFailures.WithLabelValues(r)
	}
	for i := range opts.Accounts {
		a := &opts.Accounts[i]
		if a.Username == "" {
			return nil, errors.New("broker: account without username")
		}
		if _, dup := h.accounts[a.Username]; dup {
			return nil, fmt.Errorf("broker: duplicate account %q", a.Username)
		}
		if _, err := bcrypt.Cost([]byte(a.PasswordHash)); err != nil {
			return nil, fmt.Errorf("broker: account %q: password hash is not bcrypt: %w", a.Username, err)
		}
		h.accounts[a.Username] = a
	}
	return h, nil
}

// warn logs at most one line per key every 10 s: a client guessing
// passwords must not flood the log. The counters count every attempt.
func (h *hook) warn(key, msg string, args ...any) {
	if n, ok := h.limiter.AllowCount(key); ok {
		h.log.Warn(msg, append(args, "suppressed_since_last", n)...)
	}
}

func (h *hook) ID() string { return "shelterwatch" }

func (h *hook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck || b == mqtt.OnPublish
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if !h.authenticate(cl, pk) {
		return false
	}
	// mochi publishes a will without asking the ACL or the publish hook:
	// a client may only leave a will where it may publish itself, or one
	// device's login could plant a retained "smoke" on another's topic.
	if pk.Connect.WillFlag && !h.mayPublish(string(pk.Connect.Username), pk.Connect.WillTopic) {
		h.aclDenied.Inc()
		h.warn("will:"+string(pk.Connect.Username), "broker: connection refused: will topic not allowed",
			"user", string(pk.Connect.Username), "topic", pk.Connect.WillTopic, "remote", cl.Net.Remote)
		return false
	}
	return true
}

func (h *hook) authenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	remote := cl.Net.Remote
	if user == "" {
		if h.opts.AllowAnonymous {
			return true
		}
		h.authFailures.WithLabelValues("anonymous").Inc()
		h.warn("anonymous", "broker: anonymous connection refused", "client", cl.ID, "remote", remote)
		return false
	}
	a := h.accounts[user]
	if a == nil {
		h.authFailures.WithLabelValues("unknown_user").Inc()
		h.warn("unknown_user", "broker: connection refused: unknown user", "user", user, "remote", remote)
		return false
	}
	digest := sha256.Sum256(pk.Connect.Password)
	h.mu.Lock()
	cached, ok := h.verified[user]
	h.mu.Unlock()
	if ok && cached == digest {
		return true
	}
	if bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), pk.Connect.Password) != nil {
		h.authFailures.WithLabelValues("bad_password").Inc()
		h.warn("bad_password:"+user, "broker: connection refused: wrong password", "user", user, "remote", remote)
		return false
	}
	h.mu.Lock()
	h.verified[user] = digest
	h.mu.Unlock()
	return true
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if h.allowed(user, topic, write) {
		return true
	}
	h.aclDenied.Inc()
	h.warn("acl:"+user, "broker: topic not allowed", "user", user, "topic", topic, "publish", write)
	return false
}

// mayPublish reports whether user ("" for anonymous) may publish to topic.
func (h *hook) mayPublish(user, topic string) bool { return h.allowed(user, topic, true) }

// allowed reports whether user may publish (write) or subscribe to topic.
func (h *hook) allowed(user, topic string, write bool) bool {
	var filters []string
	if user == "" {
		if write {
			filters = h.opts.AnonymousPublish
		}
	} else if a := h.accounts[user]; a != nil {
		filters = a.Subscribe
		if write {
			filters = a.Publish
		}
	}
	for _, f := range filters {
		if filterCovers(f, topic) {
			return true
		}
	}
	return false
}

func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil // the gateway's own publishes (alarm state) are not sensor data
	}
	msg := pipeline.Message{Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now(), Client: cl.ID}
	if err := h.opts.Handle(h.ctx, msg); err != nil {
		h.notAcked.Inc()
		h.log.Error("broker: publish not acknowledged", "client", cl.ID, "topic", pk.TopicName, "err", err)
		if cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos > 0 {
			// MQTT 5 clients get a failure reason code in the PUBACK.
			return pk, packets.ErrImplementationSpecificError
		}
		// An MQTT 3.1.1 client resends unacknowledged messages only after a
		// reconnect, so close the connection to make it do so.
		h.disconnect(cl, err)
		return pk, packets.ErrRejectPacket
	}
	return pk, nil
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
