// Package config loads, checks and describes the gateway's configuration file
// (see configs/shelterwatch.example.yaml for a documented sample).
//
// One typed struct, [Config], mirrors the YAML file. [Load] and [Parse]
// decode it strictly: unknown keys, duplicate keys and values of the wrong
// type are errors, like every semantic problem [Config.Validate] finds (an
// unknown zone, a duplicate topic, a malformed bcrypt hash...). All problems
// are reported at once as [Errors], one [Error] per problem, each naming the
// file, the line and the key path:
//
//	shelterwatch.yaml:14: devices[2].zone: unknown zone "dorm-9"
//
// Defaults are filled in after decoding for keys that are absent (or null);
// a key that is present must hold a valid value, so `retention: 0s` is an
// error rather than a silent "use the default". The defaults are documented
// on the fields below and in the sample file, and a test keeps the two in
// step.
//
// Relative file paths in a file read by [Load] are relative to the directory
// of that file. Secrets never appear in the file itself (the external broker
// password is read from password_file) and hashes and passwords are held as
// [Secret] values, which print and log as "[redacted]".
//
// A Config is a plain value once loaded: nothing in it changes, and it may be
// read from any number of goroutines. The package has no global state.
package config

import (
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/engine"
	"github.com/shelterwatch/shelterwatch/rules/notify"
)

// Config is the whole configuration file. YAML keys are the snake_case names
// in the field tags.
type Config struct {
	Facility Facility `yaml:"facility"`
	// Zones lists the rooms and areas of the facility; at least one.
	Zones []Zone `yaml:"zones"`
	// Devices lists the sensors; each belongs to a zone.
	Devices []Device `yaml:"devices"`
	Broker  Broker   `yaml:"broker"`
	Store   Store    `yaml:"store"`
	Ingest  Ingest   `yaml:"ingest"`
	// Influx lists the InfluxDB servers every reading is forwarded to.
	// Optional: with none, readings stay in the local store only.
	Influx []InfluxTarget `yaml:"influxdb"`
	// Rules are the safety rules, in addition to (or replacing, by id)
	// the built-in set; see the README's rule reference.
	Rules []engine.RuleConfig `yaml:"rules"`
	// RulesFile is an optional file of more rules that can be reloaded
	// without a restart (SIGHUP or POST /api/v1/rules/reload).
	RulesFile string `yaml:"rules_file"`
	Alarms    Alarms `yaml:"alarms"`
	// Hazards configures the hazard list: assignee, campaign seasons and
	// the hazard rules' thresholds.
	Hazards Hazards `yaml:"hazards"`
	// Reports configures the summary reports: schedule, mailing, what
	// counts as supervision and as the department's escalation level.
	Reports Reports `yaml:"reports"`
	// Backup configures the control socket backups are asked through and
	// the optional nightly backup.
	Backup Backup `yaml:"backup"`
	// Notify configures where alarms are sent (webhooks, Alertmanager,
	// e-mail, MQTT panels, WeCom, DingTalk, Feishu); see
	// rules/notify/README.md.
	Notify notify.Config `yaml:"notify"`
	// Cameras are the IP cameras relayed to remote supervisors.
	Cameras []Camera `yaml:"cameras"`
	// Video configures WebRTC for the cameras' viewers.
	Video Video `yaml:"video"`
	HTTP  HTTP  `yaml:"http"`
	Log   Log   `yaml:"log"`
	// MemoryLimit is the Go runtime's soft memory limit for the whole
	// process: past it the garbage collector works harder rather than let
	// the heap grow (runtime/debug.SetMemoryLimit). 0 disables it; the
	// GOMEMLIMIT environment variable overrides it. Default 256MiB: a
	// quarter of a 1 GB board, about 1.8 times the largest steady state
	// measured (144 MB at 10,000 devices), so that it only acts under a
	// burst, while the rest of the board stays for the OS, a local
	// Mosquitto and the page cache the store reads through.
	MemoryLimit ByteSize `yaml:"memory_limit"`

	// src remembers where each key was in the file, so that Validate can
	// name lines. Nil for a Config built in code.
	src *source
}

// Facility is the place one gateway serves.
type Facility struct {
	// ID is the facility's identifier: lower-case letters, digits and '-'.
	// It appears in every reading and in the default MQTT client id.
	// Required.
	ID string `yaml:"id"`
	// Name is the display name. Required.
	Name string `yaml:"name"`
	// NameZH is the Chinese display name. Optional.
	NameZH string `yaml:"name_zh"`
	// Timezone is an IANA time zone name such as "Asia/Shanghai". Required.
	Timezone string `yaml:"timezone"`
	// Location is Timezone loaded by Parse; not part of the file.
	Location *time.Location `yaml:"-"`
}

// Well-known zone tags. Rules and the UI give them meaning (a door opening in
// a secure-ward zone at night is an alarm); other tags are free words.
const (
	TagDormitory  = "dormitory"
	TagSecureWard = "secure-ward"
	TagKitchen    = "kitchen"
	TagCorridor   = "corridor"
	TagOffice     = "office"
	TagEntrance   = "entrance"
)

// Zone is a room or area.
type Zone struct {
	// ID is unique among zones: lower-case letters, digits and '-'. Required.
	ID string `yaml:"id"`
	// Name and NameZH are display names (English and Chinese). Optional.
	Name   string `yaml:"name"`
	NameZH string `yaml:"name_zh"`
	// Tags are free words of lower-case letters, digits and '-'; see the
	// Tag constants for the well-known ones.
	Tags []string `yaml:"tags"`
}

// HasTag reports whether the zone carries tag.
func (z *Zone) HasTag(tag string) bool {
	for _, t := range z.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Device is a sensor.
type Device struct {
	// ID is unique among devices: lower-case letters, digits, '-' and '_'.
	// It is also the device's MQTT username on the embedded broker.
	// Required.
	ID string `yaml:"id"`
	// Name is a display name. Optional.
	Name string `yaml:"name"`
	// Kind is the primary thing the device measures (a reading.Kind).
	// Required.
	Kind reading.Kind `yaml:"kind"`
	// Zone is the id of a declared zone. Required.
	Zone string `yaml:"zone"`
	// Format is the payload format: one of Formats(). Required.
	Format string `yaml:"format"`
	// Topic is the device's base topic, without wildcards and without a
	// leading or trailing '/'; unique among devices. Required.
	Topic string `yaml:"topic"`
	// PasswordHash is the bcrypt hash of the device's own MQTT password on
	// the embedded broker. Optional: a device without one cannot log in
	// itself (Zigbee devices publish through the Zigbee2MQTT bridge's user).
	PasswordHash Secret `yaml:"password_hash"`
	// OfflineAfter is the silence after which the device counts as
	// offline. Default: DefaultOfflineAfter(Kind).
	OfflineAfter Duration `yaml:"offline_after"`
	// Invert flips boolean states, for wiring that reports the opposite
	// (a normally-closed reed switch). Default false.
	Invert bool `yaml:"invert"`
	// Channel makes the device one sub-sensor of a multi-sensor board, as
	// the firmware names it: a Tasmota sensor or input ("DS18B20-2",
	// "Switch2"), an ESPHome object id, a Shelly component ("input:1"),
	// a Homie "node/property". Devices sharing one topic must share the
	// format and differ in channel; the one without a channel (if any)
	// gets the board's other sensors. Optional.
	Channel string `yaml:"channel"`
	// Bridge is the base topic of the Zigbee2MQTT bridge a zigbee2mqtt
	// device is behind: when the bridge says it is offline (its
	// bridge/state, also its last will) the device is unknown until the
	// bridge is back. Default: the first level of Topic.
	Bridge string `yaml:"bridge"`
	// StatusTopic, OnlinePayload and OfflinePayload are an esphome
	// node's birth and will messages when its mqtt: section changes them
	// (birth_message, will_message): the topic, which must be Topic or
	// under it, and the payloads meaning online and offline. The defaults
	// are ESPHome's own, <topic>/status with online / offline, and stay
	// understood on <topic>/status (ESPHome's shutdown_message keeps them
	// unless it is changed too). Devices sharing a topic share the node's
	// messages: set them on any of them, alike where set twice.
	StatusTopic    string `yaml:"status_topic"`
	OnlinePayload  string `yaml:"online_payload"`
	OfflinePayload string `yaml:"offline_payload"`
}

// BridgeTopic returns the Zigbee2MQTT base topic the device is behind,
// or "" for a device of another format.
func (d *Device) BridgeTopic() string {
	if d.Format != FormatZigbee2MQTT {
		return ""
	}
	if d.Bridge != "" {
		return d.Bridge
	}
	first, _, _ := strings.Cut(d.Topic, "/")
	return first
}

// DefaultOfflineAfter returns the offline_after a device of kind gets when
// the file does not set one (facility.DefaultOfflineAfter).
func DefaultOfflineAfter(kind reading.Kind) time.Duration { return facility.DefaultOfflineAfter(kind) }

// Payload formats, as named in Device.Format. They are the decoders of
// ingest/decode; the list is repeated here so that config does not depend on
// the decoders.
const (
	FormatNative      = "native"
	FormatZigbee2MQTT = "zigbee2mqtt"
	FormatTasmota     = "tasmota"
	FormatESPHome     = "esphome"
	FormatShelly      = "shelly"
	FormatHomie       = "homie"
	// FormatShellyGen1 is Shelly's first-generation MQTT API (shellies/<id>/...).
	FormatShellyGen1 = "shellygen1"
	// FormatOpenMQTTGateway is a BLE sensor's topic on an OpenMQTTGateway or
	// Theengs Gateway (<prefix>/<gateway>/BTtoMQTT/<MAC>).
	FormatOpenMQTTGateway = "openmqttgateway"
	// FormatZigbee2Tasmota is a Tasmota Zigbee bridge; its Zigbee devices
	// are channels.
	FormatZigbee2Tasmota = "zigbee2tasmota"
)

// Formats returns the valid Device.Format values.
func Formats() []string {
	return []string{FormatNative, FormatZigbee2MQTT, FormatTasmota, FormatESPHome, FormatShelly, FormatHomie,
		FormatShellyGen1, FormatOpenMQTTGateway, FormatZigbee2Tasmota}
}

// BrokerMode says where the MQTT broker runs.
type BrokerMode string

// Broker modes.
const (
	// ModeEmbedded runs the broker inside the gateway (the default).
	ModeEmbedded BrokerMode = "embedded"
	// ModeExternal connects to a broker elsewhere as a client.
	ModeExternal BrokerMode = "external"
)

// Broker configures MQTT. Only the section of the active mode is validated
// and used.
type Broker struct {
	// Mode is embedded or external. Default embedded.
	Mode     BrokerMode `yaml:"mode"`
	Embedded Embedded   `yaml:"embedded"`
	// External is required when Mode is external.
	External External `yaml:"external"`
}

// Embedded configures the in-process broker.
type Embedded struct {
	// Listen is the plain TCP listener (host:port). Default
	// "127.0.0.1:1883" when the key is absent; an explicit "" disables it.
	Listen string `yaml:"listen"`
	// TLSListen is an optional TLS listener (host:port); it needs
	// TLSCertFile and TLSKeyFile, which must exist. Default "" (none).
	TLSListen   string `yaml:"tls_listen"`
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// AllowAnonymous lets clients connect without credentials; they may
	// publish only for devices that have no password. Default false.
	AllowAnonymous bool `yaml:"allow_anonymous"`
	// MaxPacketBytes is the largest MQTT packet a client may send; a
	// longer one is refused before it is read (and the client
	// disconnected), so nobody can make the broker allocate what a header
	// claims. At least ingest.max_payload_bytes. Default 256KiB.
	MaxPacketBytes ByteSize `yaml:"max_packet_bytes"`
	// ConnectTimeout is how long a new connection may take to log in
	// (send CONNECT) before it is closed. Default 10s.
	ConnectTimeout Duration `yaml:"connect_timeout"`
	// MaxClients caps open connections in total; MaxClientsPerAddress
	// those from one IP address (sensors behind one NAT router share
	// one). Connections past a cap are closed at once. Defaults 2000, 64.
	MaxClients           int `yaml:"max_clients"`
	MaxClientsPerAddress int `yaml:"max_clients_per_address"`
	// MaxSessionExpiry caps how long a disconnected client's session
	// (MQTT 3.1.1 clean_session=false included) is kept. Default 1d.
	MaxSessionExpiry Duration `yaml:"max_session_expiry"`
	// MaxSessionsPerUser caps the sessions, connected or kept, of one
	// username (a device id or a user); at the cap the user's oldest
	// disconnected session ends, and with none a new CONNECT is refused
	// (not authorized). Default 16.
	MaxSessionsPerUser int `yaml:"max_sessions_per_user"`
	// MaxPasswordChecks caps the bcrypt checks running at once; a login
	// past it waits for one (64 logins at most, 5 s at most: a restart's
	// reconnect storm), then is refused (server busy) without one.
	// Default 2.
	MaxPasswordChecks int `yaml:"max_password_checks"`
	// Users are MQTT clients other than devices: bridges (Zigbee2MQTT),
	// sirens, panels.
	Users []User `yaml:"users"`
}

// User is an MQTT account on the embedded broker.
type User struct {
	// Username must be unique and must not be a device id (devices log in
	// with their id). Required.
	Username string `yaml:"username"`
	// PasswordHash is the bcrypt hash of the password. Required.
	PasswordHash Secret `yaml:"password_hash"`
	// Publish and Subscribe are the MQTT topic filters (with + and #) the
	// user may publish and subscribe to.
	Publish   []string `yaml:"publish"`
	Subscribe []string `yaml:"subscribe"`
	// Retain are the topic filters where the user's retained publishes
	// and will stay retained (availability, LWT: a Zigbee2MQTT bridge's
	// zigbee2mqtt/bridge/state); elsewhere they are delivered as plain
	// publishes. Default none. A device may retain on its availability
	// topic only.
	Retain []string `yaml:"retain"`
	// MaxPacketBytes replaces broker.embedded.max_packet_bytes for the
	// user once logged in (a Zigbee2MQTT bridge's bridge/devices can be
	// larger). Default 0: that one.
	MaxPacketBytes ByteSize `yaml:"max_packet_bytes"`
	// ClientIDs are MQTT client ids only this user may connect with, even
	// while it is offline (a Zigbee2MQTT bridge's, so that another login
	// cannot take it while the bridge restarts). Default none.
	ClientIDs []string `yaml:"client_ids"`
}

// External configures the client for a broker elsewhere.
type External struct {
	// URL of the broker; scheme tcp, ssl, tls, mqtt, mqtts, ws or wss.
	// No credentials in it. Required in external mode.
	URL string `yaml:"url"`
	// ClientID is the MQTT client id. Default "shelterwatch-" + facility id.
	ClientID string `yaml:"client_id"`
	// Username is optional; its password is read from PasswordFile (never
	// written in the config itself), which must exist when set.
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// CAFile verifies the broker's certificate; CertFile and KeyFile (both
	// or neither) are the client certificate. All optional, must exist.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// MaxInFlight caps the messages taken from the broker but not yet in
	// the store (messages). Default 1000.
	MaxInFlight int `yaml:"max_in_flight"`
	// ReconnectMax caps the jittered reconnect backoff. Default 30s.
	ReconnectMax Duration `yaml:"reconnect_max"`
	// KeepAlive is the MQTT keep-alive interval (whole seconds, at most
	// 65535s). Default 30s.
	KeepAlive Duration `yaml:"keep_alive"`
}

// Store configures the durable reading store.
type Store struct {
	// Dir is the store's directory. Required.
	Dir string `yaml:"dir"`
	// Retention is the maximum age of readings. Default 90d.
	Retention Duration `yaml:"retention"`
	// DiskBudget caps the size of the store on disk. Default 4GiB.
	DiskBudget ByteSize `yaml:"disk_budget"`
	// CommitMaxBatch is the most readings per group commit. Default 4096.
	CommitMaxBatch int `yaml:"commit_max_batch"`
	// DiskReserve is the free space the store leaves on its file system
	// for the alarm state, the outbox and the audit log: below it
	// readings are refused (not acknowledged) and the disk-full alarm is
	// raised. Default 128MiB.
	DiskReserve ByteSize `yaml:"disk_reserve"`
	// BallastBytes is the size of the ballast file in the store's
	// directory, released when something else fills the disk. Default
	// 64MiB.
	BallastBytes ByteSize `yaml:"ballast_bytes"`
}

// Ingest configures message intake.
type Ingest struct {
	// MaxPayloadBytes: larger payloads are dead-lettered. Default 65536
	// (64KiB).
	MaxPayloadBytes ByteSize `yaml:"max_payload_bytes"`
	// DeadLetterMax is how many dead-letter entries are kept (entries,
	// oldest evicted). Default 10000.
	DeadLetterMax int `yaml:"dead_letter_max"`
	// MaxClockSkew: device timestamps further in the future than this, or
	// older than 24h plus this, are replaced by the receive time.
	// Default 10m.
	MaxClockSkew Duration `yaml:"max_clock_skew"`
}

// Role is what an API token may do: a set of permissions (the API's
// authorisation matrix), not a rank.
type Role string

// Roles.
const (
	RoleViewer  Role = "viewer"  // read-only for machines (Grafana, scripts): readings, alarms, audit, video of its cameras
	RoleManager Role = "manager" // everything in the facility, and acting on alarms
	RoleAdmin   Role = "admin"   // a manager who also manages the gateway (rules reload, /metrics)
	// RoleSupervisor reads alarms and watches its cameras, with their
	// viewing audit; RoleInspector reads history, availability, alarms and
	// the audit log, no video. The console's people have these roles too.
	RoleSupervisor Role = "supervisor"
	RoleInspector  Role = "inspector"
	// RoleMetrics reads /metrics and nothing else (a Prometheus server's
	// token).
	RoleMetrics Role = "metrics"
)

// MetricsAuth says what /metrics asks of a client.
type MetricsAuth string

// Metrics authentication modes.
const (
	// MetricsToken needs a bearer token of role metrics or admin.
	MetricsToken MetricsAuth = "token"
	// MetricsNone serves anyone who reaches http.metrics_listen, which
	// must be a loopback address.
	MetricsNone MetricsAuth = "none"
)

// HTTP configures the API and web UI server.
type HTTP struct {
	// Listen is host:port. Default "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// ReadTimeout bounds reading a whole request, body included: a client
	// that declares a body and never sends it is cut off. Default 30s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// IdleTimeout closes keep-alive connections idle this long. Default
	// 2m.
	IdleTimeout Duration `yaml:"idle_timeout"`
	// WriteTimeout bounds sending a response, from the end of the
	// request's headers: a client that stops reading is cut off. Routes
	// whose answer takes longer by design opt out one by one. Default
	// 1m.
	WriteTimeout Duration `yaml:"write_timeout"`
	// MaxConnections caps open connections; more wait to be accepted.
	// Default 256.
	MaxConnections int `yaml:"max_connections"`
	// TLSCertFile and TLSKeyFile (both or neither; they must exist) make
	// Listen serve HTTPS only. The files are read again when they change,
	// so a renewed certificate needs no restart. `shelter-gateway cert`
	// makes them for a LAN without a public name. Default "" (plain HTTP).
	TLSCertFile string `yaml:"tls_cert_file"`
	TLSKeyFile  string `yaml:"tls_key_file"`
	// MetricsListen is a separate listener (host:port) for /metrics;
	// Listen then does not serve it. Default "" (on Listen).
	MetricsListen string `yaml:"metrics_listen"`
	// UsersFile holds the web console's accounts, managed with
	// `shelter-gateway user`. Default users.json in alarms.dir.
	UsersFile string `yaml:"users_file"`
	// SessionIdle ends a console session after this long without a
	// request (an open alarm board keeps it alive); SessionMax ends it
	// this long after the login whatever happens. Defaults 8h and 24h.
	SessionIdle Duration `yaml:"session_idle"`
	SessionMax  Duration `yaml:"session_max"`
	// MetricsAuth is token (a bearer token of role metrics or admin) or
	// none, which needs MetricsListen on a loopback address. Default
	// token.
	MetricsAuth MetricsAuth `yaml:"metrics_auth"`
	// Tokens are the API bearer tokens. With none, the API refuses every
	// request.
	Tokens []Token `yaml:"tokens"`
}

// Token is one API bearer token, stored as a hash.
type Token struct {
	// Name identifies the token in logs and the audit log; unique.
	// Required.
	Name string `yaml:"name"`
	// Role is viewer, inspector, supervisor, manager, admin or metrics.
	// Required.
	Role Role `yaml:"role"`
	// SHA256 is the hex SHA-256 of the token (64 hex digits). Required.
	SHA256 Secret `yaml:"sha256"`
	// Cameras lists the camera ids this token may watch ("*": all). None
	// by default, whatever the role: seeing into a placement is granted
	// camera by camera.
	Cameras []string `yaml:"cameras"`
}

// Log configures the gateway's own log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `yaml:"level"`
	// Format is text or json. Default text.
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog.Level (info for anything unknown).
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Defaults, as documented on the fields.
const (
	DefaultEmbeddedListen  = "127.0.0.1:1883"
	DefaultMaxPacketBytes  = 256 << 10
	DefaultConnectTimeout  = 10 * time.Second
	DefaultMaxClients      = 2000
	DefaultMaxClientsPerIP = 64
	DefaultSessionExpiry   = 24 * time.Hour
	DefaultSessionsPerUser = 16
	DefaultPasswordChecks  = 2
	DefaultHTTPListen      = "127.0.0.1:8080"
	DefaultHTTPReadTimeout = 30 * time.Second
	DefaultHTTPIdleTimeout = 2 * time.Minute
	DefaultHTTPMaxConns    = 256
	DefaultMaxInFlight     = 1000
	DefaultReconnectMax    = 30 * time.Second
	DefaultKeepAlive       = 30 * time.Second
	DefaultRetention       = 90 * 24 * time.Hour
	DefaultDiskBudget      = 4 << 30
	DefaultCommitMaxBatch  = store.DefaultCommitMaxBatch
	DefaultDiskReserve     = store.DefaultReserve
	DefaultBallastBytes    = store.DefaultBallastBytes
	DefaultMaxPayloadBytes = 64 << 10
	DefaultDeadLetterMax   = store.DefaultDeadLetterMax
	DefaultMaxClockSkew    = 10 * time.Minute
	DefaultLogLevel        = "info"
	DefaultMemoryLimit     = 256 << 20
	DefaultLogFormat       = "text"
	// DefaultClientIDPrefix is followed by the facility id.
	DefaultClientIDPrefix = "shelterwatch-"
)

// DefaultHTTPWriteTimeout is http.write_timeout's default: ample for any
// API answer on a LAN, short enough that a client that stops reading does
// not hold a connection for long.
const DefaultHTTPWriteTimeout = time.Minute

// Console session defaults: one shift without a request; a day in all.
const (
	DefaultSessionIdle = 8 * time.Hour
	DefaultSessionMax  = 24 * time.Hour
)

// DeviceByID returns the device with the given id, or nil.
func (c *Config) DeviceByID(id string) *Device {
	for i := range c.Devices {
		if c.Devices[i].ID == id {
			return &c.Devices[i]
		}
	}
	return nil
}

// ZoneByID returns the zone with the given id, or nil.
func (c *Config) ZoneByID(id string) *Zone {
	for i := range c.Zones {
		if c.Zones[i].ID == id {
			return &c.Zones[i]
		}
	}
	return nil
}

// LogValue summarises the configuration for the startup log: no hashes, no
// secrets, no credentials.
func (c *Config) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("facility", c.Facility.ID),
		slog.String("timezone", c.Facility.Timezone),
		slog.Int("zones", len(c.Zones)),
		slog.Int("devices", len(c.Devices)),
		slog.String("broker_mode", string(c.Broker.Mode)),
	}
	if c.Broker.Mode == ModeExternal {
		u := c.Broker.External.URL
		if p, err := url.Parse(u); err == nil {
			u = p.Redacted()
		} else {
			u = "[unparseable]"
		}
		attrs = append(attrs,
			slog.String("broker_url", u),
			slog.String("client_id", c.Broker.External.ClientID),
			slog.Bool("broker_auth", c.Broker.External.Username != ""))
	} else {
		attrs = append(attrs,
			slog.String("mqtt_listen", c.Broker.Embedded.Listen),
			slog.String("mqtts_listen", c.Broker.Embedded.TLSListen),
			slog.Int("mqtt_users", len(c.Broker.Embedded.Users)),
			slog.Bool("allow_anonymous", c.Broker.Embedded.AllowAnonymous))
	}
	attrs = append(attrs,
		slog.String("store_dir", c.Store.Dir),
		slog.String("retention", c.Store.Retention.String()),
		slog.String("disk_budget", c.Store.DiskBudget.String()),
		slog.Int("influxdb_targets", len(c.Influx)),
		slog.String("http_listen", c.HTTP.Listen),
		slog.Bool("https", c.HTTP.TLSCertFile != ""),
		slog.String("metrics_listen", c.HTTP.MetricsListen),
		slog.Int("api_tokens", len(c.HTTP.Tokens)),
		slog.String("log_level", c.Log.Level),
	)
	return slog.GroupValue(attrs...)
}
