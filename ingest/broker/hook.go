package broker

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
	"github.com/shelterwatch/shelterwatch/internal/throttle"
)

// hook implements admission (authentication, login throttling, client id
// binding, session caps, will checks), ACLs and the hand-off to the
// pipeline.
//
// Everything that decides whether a client may connect runs in OnConnect,
// which mochi (patched, see third_party/mochi-server/PATCHES.md) lets
// refuse with the CONNACK reason code of its choice; OnConnectAuthenticate
// only confirms that OnConnect admitted the client.
type hook struct {
	mqtt.HookBase
	opts     Options
	ctx      context.Context
	server   *mqtt.Server
	accounts map[string]*Account
	reserved map[string]string // client id → the account it is reserved for
	log      *slog.Logger
	limiter  *ratelog.Limiter
	now      func() time.Time

	throttle *throttle.Throttle
	checks   chan struct{} // one token per bcrypt check running
	queued   chan struct{} // one token per login waiting for a check slot
	sessions *sessions
	admitted sync.Map // *mqtt.Client → true, from OnConnect to OnConnectAuthenticate

	authFailures    *prometheus.CounterVec
	aclDenied       prometheus.Counter
	notAcked        prometheus.Counter
	connRefused     *prometheus.CounterVec
	passwordChecks  prometheus.Counter
	sessionsEvicted prometheus.Counter
	retainCleared   prometheus.Counter
	disconnect      func(cl *mqtt.Client, err error)

	// verified caches username → sha256(password) of successful bcrypt
	// checks, so a reconnect storm of hundreds of sensors after a power cut
	// does not pin the CPU on bcrypt. The cache holds digests, never
	// passwords.
	mu       sync.Mutex
	verified map[string][32]byte
}

// Reasons a connection is refused, as labels of
// shelterwatch_broker_auth_failures_total.
var refusalReasons = []string{"unknown_user", "bad_password", "anonymous", "throttled", "busy",
	"will_not_allowed", "client_id_taken", "client_id_reserved", "too_many_sessions", "session_ending"}

func newHook(opts Options, ctx context.Context) (*hook, error) {
	opts.Login = opts.Login.withDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &hook{
		opts:     opts,
		ctx:      ctx,
		accounts: make(map[string]*Account, len(opts.Accounts)),
		reserved: map[string]string{},
		log:      opts.Logger,
		limiter:  ratelog.New(10 * time.Second),
		now:      opts.Now,
		throttle: opts.Login.throttle(),
		checks:   make(chan struct{}, opts.Login.MaxConcurrentChecks),
		queued:   make(chan struct{}, opts.Login.MaxQueuedChecks),
		sessions: newSessions(opts.MaxSessionsPerUser),
		verified: make(map[string][32]byte),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_broker_auth_failures_total", Help: "Refused MQTT connections, by reason."},
			[]string{"reason"}),
		aclDenied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_acl_denied_total", Help: "Publishes, subscriptions and wills refused by topic ACLs."}),
		notAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_publish_not_acked_total", Help: "Publishes not acknowledged because they could not be stored."}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shelterwatch_broker_connections_refused_total", Help: "TCP connections closed at accept, by the limit they hit."},
			[]string{"reason"}),
		passwordChecks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_password_checks_total", Help: "bcrypt password checks run (logins not answered from the cache)."}),
		sessionsEvicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_sessions_evicted_total", Help: "Disconnected sessions ended to make room for a new session of the same user."}),
		retainCleared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shelterwatch_broker_retain_cleared_total", Help: "Retained publishes and wills delivered as plain ones: the account may not retain on the topic."}),
	}
	for _, r := range refusalReasons {
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
		for _, id := range a.ClientIDs {
			if other, dup := h.reserved[id]; dup {
				return nil, fmt.Errorf("broker: client id %q reserved for both %q and %q", id, other, a.Username)
			}
			h.reserved[id] = a.Username
		}
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
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnDisconnect, mqtt.OnClientExpired,
		mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWillSent:
		return true
	}
	return false
}

// refuse counts and logs a refused connection and returns the CONNACK
// reason code mochi answers with (v3 clients get the matching 3.1.1 code).
func (h *hook) refuse(reason string, code packets.Code, cl *mqtt.Client, user string, args ...any) error {
	h.authFailures.WithLabelValues(reason).Inc()
	h.warn(reason+":"+user, "broker: connection refused: "+code.Reason,
		append([]any{"reason", reason, "user", user, "client", cl.ID, "remote", cl.Net.Remote}, args...)...)
	return code
}

// OnConnect admits a client or refuses it with a reason code: the login,
// then what the user may hold (its will, its client id, its sessions).
func (h *hook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	user := string(pk.Connect.Username)
	if err := h.authenticate(cl, pk); err != nil {
		return err
	}
	if cl.ID == mqtt.InlineClientId {
		// mochi's own client for the gateway's publishes.
		return h.refuse("client_id_reserved", packets.ErrClientIdentifierNotValid, cl, user)
	}
	if owner, ok := h.reserved[cl.ID]; ok && owner != user {
		return h.refuse("client_id_reserved", packets.ErrNotAuthorized, cl, user)
	}
	// mochi publishes a will without asking the ACL or the publish hook:
	// a client may only leave a will where it may publish itself, or one
	// device's login could plant a retained "smoke" on another's topic.
	if pk.Connect.WillFlag {
		if !h.allowed(user, pk.Connect.WillTopic, true) {
			h.aclDenied.Inc()
			return h.refuse("will_not_allowed", packets.ErrNotAuthorized, cl, user, "topic", pk.Connect.WillTopic)
		}
		if cl.Properties.Will.Retain && !h.mayRetain(user, pk.Connect.WillTopic) {
			cl.Properties.Will.Retain = false
			h.retainCleared.Inc()
		}
	}
	if user == "" {
		// Anonymous clients share one identity: no session outlives its
		// connection, so none can pile up.
		cl.Properties.Clean = true
		cl.Properties.Props.SessionExpiryInterval = 0
		cl.Properties.Props.SessionExpiryIntervalFlag = false
	} else if a := h.accounts[user]; a.MaxPacketBytes > 0 {
		cl.State.MaximumPacketSize = a.MaxPacketBytes
	}
	evict, reason := h.sessions.claim(user, cl, user != "")
	switch reason {
	case "":
	case "session_ending":
		return h.refuse(reason, packets.ErrServerBusy, cl, user)
	default:
		return h.refuse(reason, packets.ErrNotAuthorized, cl, user)
	}
	if evict != nil {
		if h.server.ExpireClient(evict) { // calls OnClientExpired, which releases it
			h.sessionsEvicted.Inc()
		}
		h.sessions.release(evict)
	}
	h.admitted.Store(cl, true)
	return nil
}

// OnConnectAuthenticate lets in exactly the clients OnConnect admitted.
func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	_, ok := h.admitted.LoadAndDelete(cl)
	return ok
}

// authenticate checks the login, or says with which code it is refused.
func (h *hook) authenticate(cl *mqtt.Client, pk packets.Packet) error {
	user := string(pk.Connect.Username)
	if user == "" {
		if h.opts.AllowAnonymous {
			return nil
		}
		return h.refuse("anonymous", packets.ErrBadUsernameOrPassword, cl, user)
	}
	ip := remoteHost(cl.Net.Remote)
	a := h.accounts[user]
	tracked := user // only configured usernames are tracked
	if a == nil {
		tracked = ""
	}
	now := h.now()
	if blocked, until := h.throttle.Blocked(ip, tracked, now); blocked {
		return h.refuse("throttled", packets.ErrConnectionRateExceeded, cl, user, "retry_after", until.Sub(now).Round(time.Second))
	}
	if a == nil {
		h.throttle.Failed(ip, "", now)
		return h.refuse("unknown_user", packets.ErrBadUsernameOrPassword, cl, user)
	}
	digest := sha256.Sum256(pk.Connect.Password)
	h.mu.Lock()
	cached, ok := h.verified[user]
	h.mu.Unlock()
	if ok && cached == digest {
		h.throttle.Succeeded(ip, user)
		return nil
	}
	if !h.checkSlot() {
		return h.refuse("busy", packets.ErrServerBusy, cl, user)
	}
	// A login that waited for its slot is judged again: the failures of
	// those ahead of it may have put its address or username in penalty.
	if blocked, until := h.throttle.Blocked(ip, tracked, h.now()); blocked {
		<-h.checks
		return h.refuse("throttled", packets.ErrConnectionRateExceeded, cl, user, "retry_after", until.Sub(now).Round(time.Second))
	}
	h.passwordChecks.Inc()
	err := bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), pk.Connect.Password)
	<-h.checks
	if err != nil {
		h.throttle.Failed(ip, user, h.now())
		return h.refuse("bad_password", packets.ErrBadUsernameOrPassword, cl, user)
	}
	h.mu.Lock()
	h.verified[user] = digest
	h.mu.Unlock()
	h.throttle.Succeeded(ip, user)
	return nil
}

// checkSlot takes one of the bcrypt check slots. When all are taken the
// login waits in a bounded queue for at most CheckWait: after a restart
// every device reconnects at once, and each refused one would wait out
// its firmware's retry period (Tasmota: 10 s and growing) before its
// readings flow again. Beyond the queue, or after the wait, it is refused
// ("server busy"), so a flood of logins neither pins the CPU nor piles up
// goroutines. The caller releases the slot (<-h.checks).
func (h *hook) checkSlot() bool {
	select {
	case h.checks <- struct{}{}:
		return true
	default:
	}
	select {
	case h.queued <- struct{}{}:
	default:
		return false
	}
	defer func() { <-h.queued }()
	t := time.NewTimer(h.opts.Login.CheckWait)
	defer t.Stop()
	select {
	case h.checks <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-h.ctx.Done():
		return false
	}
}

// OnDisconnect releases the client id of a session that ends with the
// connection.
func (h *hook) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire {
		h.sessions.release(cl)
	}
}

// OnClientExpired releases the client id of an expired or evicted session.
func (h *hook) OnClientExpired(cl *mqtt.Client) { h.sessions.release(cl) }

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	if h.allowed(user, topic, write) {
		return true
	}
	h.aclDenied.Inc()
	h.warn("acl:"+user, "broker: topic not allowed", "user", user, "topic", topic, "publish", write)
	return false
}

// allowed reports whether user ("" for anonymous) may publish (write) or
// subscribe to topic.
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
	return anyCovers(filters, topic)
}

// mayRetain reports whether user's retained publishes to topic stay
// retained.
func (h *hook) mayRetain(user, topic string) bool {
	filters := h.opts.AnonymousRetain
	if user != "" {
		filters = nil
		if a := h.accounts[user]; a != nil {
			filters = a.Retain
		}
	}
	return anyCovers(filters, topic)
}

func anyCovers(filters []string, topic string) bool {
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
	if pk.FixedHeader.Retain && !h.mayRetain(string(cl.Properties.Username), pk.TopicName) {
		// Delivered, but not kept for later subscribers: a stale retained
		// "all clear" on a siren's topic is what an attacker would plant.
		pk.FixedHeader.Retain = false
		h.retainCleared.Inc()
	}
	msg := pipeline.Message{Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now(), Client: cl.ID}
	if d := cl.DeferAck(pk); d != nil {
		// The PUBACK waits for the group commit; the connection does not.
		h.opts.HandleAsync(h.ctx, msg, func(err error) {
			if err != nil {
				h.notAcked.Inc()
				h.log.Error("broker: publish not acknowledged", "client", cl.ID, "topic", msg.Topic, "err", err)
				// An MQTT 5 client is told in the PUBACK; an MQTT 3.1.1
				// one, which resends only after a reconnect, is
				// disconnected (mochi does either).
				d.Done(packets.ErrImplementationSpecificError)
				return
			}
			d.Done(nil)
		})
		return pk, nil
	}
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

// OnWillSent hands a will the broker has just published for a client
// that vanished to the pipeline, as its publish would have been: mochi
// publishes wills without the publish hook, and a will is often the only
// word that a device (a Tasmota or ESPHome LWT) or a Zigbee2MQTT bridge
// (bridge/state "offline") died. OnConnect has checked the client may
// publish there. Nobody waits for an acknowledgement of a will, so a
// store failure is logged and counted.
func (h *hook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if cl.Net.Inline {
		return
	}
	msg := pipeline.Message{Topic: pk.TopicName, Payload: pk.Payload, Received: time.Now(), Client: cl.ID}
	done := func(err error) {
		if err != nil {
			h.notAcked.Inc()
			h.log.Error("broker: will not stored", "client", cl.ID, "topic", msg.Topic, "err", err)
		}
	}
	if h.opts.HandleAsync != nil {
		h.opts.HandleAsync(h.ctx, msg, done)
		return
	}
	// Not on this goroutine: Handle may wait for room on a full disk,
	// and the client's connection is being torn down here.
	go func() { done(h.opts.Handle(h.ctx, msg)) }()
}

// remoteHost is the IP address of a client's "host:port".
func remoteHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}
