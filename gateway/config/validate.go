package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Validate checks the meaning of c: required keys, identifier syntax, unique
// ids and topics, references between sections, listen addresses, hashes,
// files that must exist. It returns Errors (every problem, in line order,
// with lines when c came from Parse or Load) or nil. Parse and Load call it;
// call it again after changing a Config in code.
//
// Validate does not fill in defaults: on a Config built in code every
// number, duration and size must be set.
func (c *Config) Validate() error {
	errs := c.validate()
	sortErrors(errs)
	return errs.asError()
}

// validator collects the problems of one Config.
type validator struct {
	c    *Config
	errs Errors
}

func (c *Config) validate() Errors {
	v := &validator{c: c}
	v.facility()
	zones := v.zones()
	devices := v.devices(zones)
	v.broker(devices)
	v.store()
	v.ingest()
	v.influx()
	v.alarms()
	v.hazards()
	v.reports()
	v.backup()
	v.notify()
	cams := v.video(zones)
	v.http()
	v.tokenCameras(cams)
	v.log()
	v.memoryLimit()
	return v.errs
}

func (v *validator) errorf(key, format string, args ...any) {
	e := &Error{Key: key, Msg: fmt.Sprintf(format, args...)}
	if v.c.src != nil {
		e.File, e.Line = v.c.src.file, v.c.src.line(key)
	}
	v.errs = append(v.errs, e)
}

// where names the place of key for messages about duplicates: "line 12",
// or the key path when the line is unknown.
func (v *validator) where(key string) string {
	if l := v.c.src.line(key); l > 0 {
		return "line " + strconv.Itoa(l)
	}
	return key
}

func idx(list string, i int) string { return list + "[" + strconv.Itoa(i) + "]" }

var (
	facilityIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	zoneIDRE     = facilityIDRE
	tagRE        = facilityIDRE
	deviceIDRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
)

// maxIDLen bounds identifiers: they end up in topics, metrics labels and
// file names.
const maxIDLen = 64

// id checks a required identifier.
func (v *validator) id(key, id string, re *regexp.Regexp, chars string) bool {
	switch {
	case id == "":
		v.errorf(key, "required")
	case len(id) > maxIDLen:
		v.errorf(key, "longer than %d characters", maxIDLen)
	case !re.MatchString(id):
		v.errorf(key, "invalid id %s: use %s, starting with a letter or digit", quote(id), chars)
	default:
		return true
	}
	return false
}

func (v *validator) required(key, s string) {
	if s == "" {
		v.errorf(key, "required")
	}
}

func (v *validator) facility() {
	f := &v.c.Facility
	v.id("facility.id", f.ID, facilityIDRE, "lower-case letters, digits and '-'")
	v.required("facility.name", f.Name)
	if f.Timezone == "" {
		v.errorf("facility.timezone", "required")
	} else if _, err := loadLocation(f.Timezone); err != nil {
		v.errorf("facility.timezone", "%v", err)
	}
}

// loadLocation loads an IANA time zone; "Local" is refused because it
// depends on the host the gateway happens to run on.
func loadLocation(name string) (*time.Location, error) {
	if name == "" || name == "Local" {
		return nil, fmt.Errorf("unknown time zone %s: use an IANA name such as Asia/Shanghai", quote(name))
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %s: use an IANA name such as Asia/Shanghai", quote(name))
	}
	return loc, nil
}

// unique records id as list[i].id in ids, or reports it as a duplicate
// naming where it first appeared.
func (v *validator) unique(ids map[string]int, list, what, id string, i int) {
	if first, dup := ids[id]; dup {
		v.errorf(idx(list, i)+".id", "duplicate %s id %s (first at %s)", what, quote(id), v.where(idx(list, first)+".id"))
		return
	}
	ids[id] = i
}

// zones checks the zones and returns the index of each zone id.
func (v *validator) zones() map[string]int {
	ids := map[string]int{}
	if len(v.c.Zones) == 0 {
		v.errorf("zones", "at least one zone is required")
	}
	for i, z := range v.c.Zones {
		key := idx("zones", i)
		if v.id(key+".id", z.ID, zoneIDRE, "lower-case letters, digits and '-'") {
			v.unique(ids, "zones", "zone", z.ID, i)
		}
		seen := map[string]bool{}
		for j, t := range z.Tags {
			tkey := idx(key+".tags", j)
			switch {
			case !tagRE.MatchString(t) || len(t) > maxIDLen:
				v.errorf(tkey, "invalid tag %s: use lower-case letters, digits and '-'", quote(t))
			case seen[t]:
				v.errorf(tkey, "duplicate tag %s", quote(t))
			}
			seen[t] = true
		}
	}
	return ids
}

// devices checks the devices and returns the set of device ids.
func (v *validator) devices(zones map[string]int) map[string]bool {
	ids := map[string]int{}
	topics := map[string][]int{}
	for i, d := range v.c.Devices {
		key := idx("devices", i)
		if v.id(key+".id", d.ID, deviceIDRE, "lower-case letters, digits, '-' and '_'") {
			v.unique(ids, "devices", "device", d.ID, i)
		}
		if d.Kind == "" {
			v.errorf(key+".kind", "required")
		} else if _, ok := d.Kind.Known(); !ok || d.Kind.Internal() {
			v.errorf(key+".kind", "unknown kind %s (known: %s)", quote(string(d.Kind)), strings.Join(kindNames(), ", "))
		}
		if d.Zone == "" {
			v.errorf(key+".zone", "required")
		} else if _, ok := zones[d.Zone]; !ok {
			v.errorf(key+".zone", "unknown zone %s", quote(d.Zone))
		}
		if d.Format == "" {
			v.errorf(key+".format", "required")
		} else if !slices.Contains(Formats(), d.Format) {
			v.errorf(key+".format", "unknown format %s (known: %s)", quote(d.Format), strings.Join(Formats(), ", "))
		}
		if d.Channel != "" {
			v.channel(key+".channel", d.Channel)
		}
		if d.Bridge != "" {
			if d.Format != FormatZigbee2MQTT {
				v.errorf(key+".bridge", "only a zigbee2mqtt device is behind a bridge")
			} else if v.topic(key+".bridge", d.Bridge) && !strings.HasPrefix(d.Topic, d.Bridge+"/") {
				v.errorf(key+".bridge", "the device's topic %s is not under the bridge's base topic %s", quote(d.Topic), quote(d.Bridge))
			}
		}
		topicOK := v.topic(key+".topic", d.Topic)
		v.status(key, d, topicOK)
		if topicOK {
			// Devices may share a topic only as channels of one board.
			for _, first := range topics[d.Topic] {
				o := &v.c.Devices[first]
				switch {
				case o.Format != d.Format:
					v.errorf(key+".topic", "topic %s is already the topic of device %q (%s) of format %s: devices sharing a topic are channels of one board and share its format",
						quote(d.Topic), o.ID, v.where(idx("devices", first)+".topic"), o.Format)
				case o.Channel == d.Channel && d.Channel == "":
					v.errorf(key+".topic", "topic %s is already the topic of device %q (%s); give each sensor of one board its own channel",
						quote(d.Topic), o.ID, v.where(idx("devices", first)+".topic"))
				case o.Channel == d.Channel:
					v.errorf(key+".channel", "channel %s of topic %s is already device %q (%s)",
						quote(d.Channel), quote(d.Topic), o.ID, v.where(idx("devices", first)+".channel"))
				default:
					v.sameStatus(key, d, idx("devices", first), o)
					continue
				}
				break
			}
			topics[d.Topic] = append(topics[d.Topic], i)
		}
		if d.PasswordHash != "" {
			v.bcrypt(key+".password_hash", d.PasswordHash)
		}
		v.positive(key+".offline_after", int64(d.OfflineAfter), d.OfflineAfter.String())
	}
	set := make(map[string]bool, len(ids))
	for id := range ids {
		set[id] = true
	}
	return set
}

// status checks a device's birth and will messages (status_topic,
// online_payload, offline_payload): an esphome node's only, the topic
// at or under the device's topic, the payloads plain and different.
func (v *validator) status(key string, d Device, topicOK bool) {
	if d.StatusTopic == "" && d.OnlinePayload == "" && d.OfflinePayload == "" {
		return
	}
	if d.Format != FormatESPHome {
		for _, k := range []struct{ key, val string }{{"status_topic", d.StatusTopic}, {"online_payload", d.OnlinePayload}, {"offline_payload", d.OfflinePayload}} {
			if k.val != "" {
				v.errorf(key+"."+k.key, "only an esphome device sets its birth and will messages (format is %s)", quote(d.Format))
			}
		}
		return
	}
	if d.StatusTopic != "" && v.topic(key+".status_topic", d.StatusTopic) && topicOK &&
		d.StatusTopic != d.Topic && !strings.HasPrefix(d.StatusTopic, d.Topic+"/") {
		v.errorf(key+".status_topic", "%s is not under the device's topic %s: the gateway hears a node only on its own topic",
			quote(d.StatusTopic), quote(d.Topic))
	}
	for _, p := range []struct{ key, val string }{{"online_payload", d.OnlinePayload}, {"offline_payload", d.OfflinePayload}} {
		switch {
		case p.val == "":
		case len(p.val) > maxIDLen:
			v.errorf(key+"."+p.key, "payload is %d bytes, at most %d", len(p.val), maxIDLen)
		case strings.TrimSpace(p.val) != p.val || !utf8.ValidString(p.val) || strings.ContainsFunc(p.val, unicode.IsControl):
			v.errorf(key+"."+p.key, "payload %s must be printable text without leading or trailing white space", quote(p.val))
		}
	}
	// The defaults stay understood (a shutdown_message left alone says
	// offline), so neither payload may be the other's default word.
	switch {
	case d.OnlinePayload != "" && (d.OnlinePayload == d.OfflinePayload || d.OnlinePayload == "offline"):
		v.errorf(key+".online_payload", "%s also means offline; give online and offline different payloads", quote(d.OnlinePayload))
	case d.OfflinePayload == "online":
		v.errorf(key+".offline_payload", "%s also means online; give online and offline different payloads", quote(d.OfflinePayload))
	}
}

// sameStatus checks that two devices of one board (d at key, o at okey)
// do not set its birth and will messages differently.
func (v *validator) sameStatus(key string, d Device, okey string, o *Device) {
	for _, k := range []struct{ key, a, b string }{
		{"status_topic", d.StatusTopic, o.StatusTopic},
		{"online_payload", d.OnlinePayload, o.OnlinePayload},
		{"offline_payload", d.OfflinePayload, o.OfflinePayload},
	} {
		if k.a != "" && k.b != "" && k.a != k.b {
			v.errorf(key+"."+k.key, "%s, but device %q of the same node says %s (%s): a node has one birth and will",
				quote(k.a), o.ID, quote(k.b), v.where(okey+"."+k.key))
		}
	}
}

func kindNames() []string {
	var names []string
	for _, k := range reading.Kinds() {
		names = append(names, string(k))
	}
	slices.Sort(names)
	return names
}

// channel checks a device's channel: the firmware's name for a sub-sensor,
// printable, without white space, at most maxIDLen bytes.
func (v *validator) channel(key, ch string) {
	if len(ch) > maxIDLen {
		v.errorf(key, "channel is %d bytes, at most %d", len(ch), maxIDLen)
		return
	}
	for _, r := range ch {
		if r <= ' ' || r == 0x7f || r == '+' || r == '#' || !utf8.ValidRune(r) {
			v.errorf(key, "channel %s must be printable, without white space or MQTT wildcards", quote(ch))
			return
		}
	}
}

// topic checks a device's base topic, a topic name (no wildcards).
func (v *validator) topic(key, t string) bool {
	switch {
	case t == "":
		v.errorf(key, "required")
	case len(t) > 65535:
		v.errorf(key, "longer than 65535 bytes")
	case !utf8.ValidString(t) || strings.ContainsRune(t, 0):
		v.errorf(key, "topic must be UTF-8 without NUL characters")
	case strings.ContainsAny(t, "+#"):
		v.errorf(key, "topic %s must not contain wildcards (+ #)", quote(t))
	case strings.HasPrefix(t, "/") || strings.HasSuffix(t, "/"):
		v.errorf(key, "topic %s must not start or end with '/'", quote(t))
	case strings.Contains(t, "//"):
		v.errorf(key, "topic %s has an empty level", quote(t))
	case strings.HasPrefix(t, "$"):
		v.errorf(key, "topic %s must not start with '$' (reserved for the broker)", quote(t))
	default:
		return true
	}
	return false
}

// filter checks an MQTT topic filter (wildcards allowed where MQTT allows
// them).
func (v *validator) filter(key, f string) {
	switch {
	case f == "":
		v.errorf(key, "empty topic filter")
		return
	case len(f) > 65535:
		v.errorf(key, "longer than 65535 bytes")
		return
	case !utf8.ValidString(f) || strings.ContainsRune(f, 0):
		v.errorf(key, "topic filter must be UTF-8 without NUL characters")
		return
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			v.errorf(key, "invalid topic filter %s: '#' must be a whole level, and the last", quote(f))
			return
		}
		if strings.Contains(l, "+") && l != "+" {
			v.errorf(key, "invalid topic filter %s: '+' must be a whole level", quote(f))
			return
		}
	}
}

var bcryptRE = regexp.MustCompile(`^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$`)

// bcrypt checks that h looks like a bcrypt hash. The message never quotes
// the hash.
func (v *validator) bcrypt(key string, h Secret) {
	if !bcryptRE.MatchString(string(h)) {
		v.errorf(key, "not a bcrypt hash (want $2a$, $2b$ or $2y$, cost and 53 characters of salt and hash; make one with `shelter-gateway hash-password`)")
		return
	}
	if _, err := bcrypt.Cost([]byte(h)); err != nil {
		v.errorf(key, "not a bcrypt hash: %s", strings.TrimPrefix(err.Error(), "crypto/bcrypt: "))
	}
}

func (v *validator) positive(key string, n int64, shown string) {
	if n <= 0 {
		v.errorf(key, "must be greater than 0, got %s", shown)
	}
}

// addr checks a listen address.
func (v *validator) addr(key, a string) bool {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		v.errorf(key, "invalid address %s: want host:port, e.g. 127.0.0.1:1883", quote(a))
		return false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		v.errorf(key, "invalid port in %s: want a number 0-65535", quote(a))
		return false
	}
	return true
}

// file checks that path names an existing file.
func (v *validator) file(key, path string) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		v.errorf(key, "cannot use file %s: %v", quote(path), unwrapPathError(err))
	case fi.IsDir():
		v.errorf(key, "%s is a directory, not a file", quote(path))
	}
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func (v *validator) broker(devices map[string]bool) {
	b := &v.c.Broker
	switch b.Mode {
	case ModeEmbedded:
		v.embedded(devices)
	case ModeExternal:
		v.external()
	default:
		v.errorf("broker.mode", "unknown mode %s (want embedded or external)", quote(string(b.Mode)))
	}
}

func (v *validator) embedded(devices map[string]bool) {
	e := &v.c.Broker.Embedded
	const key = "broker.embedded"
	if e.Listen == "" && e.TLSListen == "" {
		v.errorf(key+".listen", "no listener: set listen, tls_listen or both")
	}
	v.positive(key+".connect_timeout", int64(e.ConnectTimeout), e.ConnectTimeout.String())
	v.positive(key+".max_clients", int64(e.MaxClients), fmt.Sprint(e.MaxClients))
	v.positive(key+".max_clients_per_address", int64(e.MaxClientsPerAddress), fmt.Sprint(e.MaxClientsPerAddress))
	if e.MaxSessionExpiry < Duration(time.Second) {
		v.errorf(key+".max_session_expiry", "must be at least 1s, got %s", e.MaxSessionExpiry)
	}
	v.positive(key+".max_sessions_per_user", int64(e.MaxSessionsPerUser), fmt.Sprint(e.MaxSessionsPerUser))
	v.positive(key+".max_password_checks", int64(e.MaxPasswordChecks), fmt.Sprint(e.MaxPasswordChecks))
	if mp, mpl := e.MaxPacketBytes, v.c.Ingest.MaxPayloadBytes; mpl <= maxMQTTPayload && (mp < mpl || mp > maxMQTTPayload) {
		v.errorf(key+".max_packet_bytes", "must be from ingest.max_payload_bytes (%s) to %s, got %s", mpl, ByteSize(maxMQTTPayload), mp)
	}
	if e.Listen != "" {
		v.addr(key+".listen", e.Listen)
	}
	if e.TLSListen != "" {
		v.addr(key+".tls_listen", e.TLSListen)
		if e.TLSListen == e.Listen && !anyPort(e.Listen) {
			v.errorf(key+".tls_listen", "same address as listen")
		}
		var missing []string
		for _, f := range []struct{ name, path string }{
			{"tls_cert_file", e.TLSCertFile},
			{"tls_key_file", e.TLSKeyFile},
		} {
			if f.path == "" {
				missing = append(missing, f.name)
			} else {
				v.file(key+"."+f.name, f.path)
			}
		}
		if len(missing) > 0 {
			v.errorf(key+".tls_listen", "needs %s", strings.Join(missing, " and "))
		}
	}
	names := map[string]int{}
	clientIDs := map[string]int{} // client id → the user it is reserved for
	for i, u := range e.Users {
		ukey := idx(key+".users", i)
		for j, id := range u.ClientIDs {
			switch other, dup := clientIDs[id]; {
			case id == "":
				v.errorf(idx(ukey+".client_ids", j), "empty client id")
			case dup:
				v.errorf(idx(ukey+".client_ids", j), "client id %s is already reserved for user %s (%s)",
					quote(id), quote(e.Users[other].Username), v.where(idx(key+".users", other)))
			default:
				clientIDs[id] = i
			}
		}
		switch {
		case u.Username == "":
			v.errorf(ukey+".username", "required")
		case devices[u.Username]:
			v.errorf(ukey+".username", "%s is also a device id (devices log in with their id)", quote(u.Username))
		default:
			if first, dup := names[u.Username]; dup {
				v.errorf(ukey+".username", "duplicate username %s (first at %s)", quote(u.Username), v.where(idx(key+".users", first)+".username"))
			} else {
				names[u.Username] = i
			}
		}
		if u.PasswordHash == "" {
			v.errorf(ukey+".password_hash", "required")
		} else {
			v.bcrypt(ukey+".password_hash", u.PasswordHash)
		}
		for j, f := range u.Publish {
			v.filter(idx(ukey+".publish", j), f)
		}
		for j, f := range u.Subscribe {
			v.filter(idx(ukey+".subscribe", j), f)
		}
		for j, f := range u.Retain {
			v.filter(idx(ukey+".retain", j), f)
		}
		if mp := u.MaxPacketBytes; mp != 0 && (mp < v.c.Ingest.MaxPayloadBytes || mp > maxMQTTPayload) {
			v.errorf(ukey+".max_packet_bytes", "must be from ingest.max_payload_bytes (%s) to %s, got %s", v.c.Ingest.MaxPayloadBytes, ByteSize(maxMQTTPayload), mp)
		}
	}
}

var brokerSchemes = []string{"tcp", "ssl", "tls", "mqtt", "mqtts", "ws", "wss"}

func (v *validator) external() {
	e := &v.c.Broker.External
	const key = "broker.external"
	if e.URL == "" {
		v.errorf(key+".url", "required when broker.mode is external")
	} else if u, err := url.Parse(e.URL); err != nil {
		v.errorf(key+".url", "invalid URL %s", quote(e.URL))
	} else {
		switch {
		case u.User != nil:
			v.errorf(key+".url", "credentials in the URL are not allowed: use username and password_file")
		case !slices.Contains(brokerSchemes, u.Scheme):
			v.errorf(key+".url", "unsupported scheme %s (want one of %s)", quote(u.Scheme), strings.Join(brokerSchemes, ", "))
		case u.Hostname() == "":
			v.errorf(key+".url", "URL %s has no host", quote(e.URL))
		case u.Port() != "":
			if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
				v.errorf(key+".url", "invalid port in %s", quote(e.URL))
			}
		}
	}
	v.required(key+".client_id", e.ClientID)
	if e.PasswordFile != "" {
		if e.Username == "" {
			v.errorf(key+".password_file", "needs a username (MQTT sends no password without one)")
		}
		v.file(key+".password_file", e.PasswordFile)
	}
	if e.CAFile != "" {
		v.file(key+".ca_file", e.CAFile)
	}
	switch {
	case e.CertFile != "" && e.KeyFile == "":
		v.errorf(key+".cert_file", "needs key_file")
	case e.CertFile == "" && e.KeyFile != "":
		v.errorf(key+".key_file", "needs cert_file")
	}
	if e.CertFile != "" {
		v.file(key+".cert_file", e.CertFile)
	}
	if e.KeyFile != "" {
		v.file(key+".key_file", e.KeyFile)
	}
	v.positive(key+".max_in_flight", int64(e.MaxInFlight), strconv.Itoa(e.MaxInFlight))
	v.positive(key+".reconnect_max", int64(e.ReconnectMax), e.ReconnectMax.String())
	if v.positive(key+".keep_alive", int64(e.KeepAlive), e.KeepAlive.String()); e.KeepAlive > 0 {
		if k := e.KeepAlive.Std(); k%time.Second != 0 || k > 65535*time.Second {
			v.errorf(key+".keep_alive", "must be whole seconds, at most 65535s, got %s", e.KeepAlive)
		}
	}
}

func (v *validator) store() {
	s := &v.c.Store
	v.required("store.dir", s.Dir)
	v.positive("store.retention", int64(s.Retention), s.Retention.String())
	if v.positive("store.disk_budget", int64(s.DiskBudget), s.DiskBudget.String()); s.DiskBudget > 0 && s.DiskBudget < MinDiskBudget {
		// The engine keeps a floor of a few tens of MiB (write buffers, WAL
		// files); below it the budget would delete every reading.
		v.errorf("store.disk_budget", "must be at least %s, got %s", ByteSize(MinDiskBudget), s.DiskBudget)
	}
	v.positive("store.commit_max_batch", int64(s.CommitMaxBatch), strconv.Itoa(s.CommitMaxBatch))
	v.positive("store.disk_reserve", int64(s.DiskReserve), s.DiskReserve.String())
	v.positive("store.ballast_bytes", int64(s.BallastBytes), s.BallastBytes.String())
}

// MinDiskBudget is the smallest store.disk_budget accepted.
const MinDiskBudget = 64 << 20

// maxMQTTPayload is the largest payload an MQTT packet can carry (the
// 256MiB packet size limit, less a little for the header).
const maxMQTTPayload = 256 << 20

func (v *validator) ingest() {
	in := &v.c.Ingest
	if v.positive("ingest.max_payload_bytes", int64(in.MaxPayloadBytes), in.MaxPayloadBytes.String()); in.MaxPayloadBytes > maxMQTTPayload {
		v.errorf("ingest.max_payload_bytes", "must be at most %s (the MQTT limit), got %s", ByteSize(maxMQTTPayload), in.MaxPayloadBytes)
	}
	v.positive("ingest.dead_letter_max", int64(in.DeadLetterMax), strconv.Itoa(in.DeadLetterMax))
	if in.MaxClockSkew < 0 {
		v.errorf("ingest.max_clock_skew", "must not be negative, got %s", in.MaxClockSkew)
	}
}

var roles = []Role{RoleViewer, RoleInspector, RoleSupervisor, RoleManager, RoleAdmin, RoleMetrics}

func (v *validator) http() {
	h := &v.c.HTTP
	v.positive("http.read_timeout", int64(h.ReadTimeout), h.ReadTimeout.String())
	v.positive("http.idle_timeout", int64(h.IdleTimeout), h.IdleTimeout.String())
	v.positive("http.max_connections", int64(h.MaxConnections), fmt.Sprint(h.MaxConnections))
	v.httpsAndMetrics()
	if h.Listen == "" {
		v.errorf("http.listen", "required")
	} else if v.addr("http.listen", h.Listen) && v.c.Broker.Mode == ModeEmbedded {
		for _, other := range []struct{ key, addr string }{
			{"broker.embedded.listen", v.c.Broker.Embedded.Listen},
			{"broker.embedded.tls_listen", v.c.Broker.Embedded.TLSListen},
		} {
			// Port 0 asks the kernel for a free port: never a clash.
			if other.addr == h.Listen && !anyPort(h.Listen) {
				v.errorf("http.listen", "same address as %s", other.key)
			}
		}
	}
	names := map[string]int{}
	hashes := map[string]int{}
	for i, t := range h.Tokens {
		key := idx("http.tokens", i)
		if t.Name == "" {
			v.errorf(key+".name", "required")
		} else if first, dup := names[t.Name]; dup {
			v.errorf(key+".name", "duplicate token name %s (first at %s)", quote(t.Name), v.where(idx("http.tokens", first)+".name"))
		} else {
			names[t.Name] = i
		}
		if t.Role == "" {
			v.errorf(key+".role", "required")
		} else if !slices.Contains(roles, t.Role) {
			v.errorf(key+".role", "unknown role %s (want viewer, inspector, supervisor, manager, admin or metrics)", quote(string(t.Role)))
		} else if t.Role == RoleMetrics && len(t.Cameras) > 0 {
			v.errorf(key+".cameras", "a token of role metrics reads /metrics only: it watches no camera")
		} else if t.Role == RoleInspector && len(t.Cameras) > 0 {
			v.errorf(key+".cameras", "a token of role inspector watches no video: give it no cameras (or the role supervisor)")
		}
		switch sum := strings.ToLower(string(t.SHA256)); {
		case sum == "":
			v.errorf(key+".sha256", "required")
		case len(sum) != 64:
			v.errorf(key+".sha256", "want 64 hex digits (the SHA-256 of the token), got %d characters", utf8.RuneCountInString(sum))
		case !isHex(sum):
			v.errorf(key+".sha256", "want 64 hex digits (the SHA-256 of the token), got other characters")
		default:
			if first, dup := hashes[sum]; dup {
				v.errorf(key+".sha256", "same token as %s (%s)", quote(h.Tokens[first].Name), v.where(idx("http.tokens", first)+".sha256"))
			} else {
				hashes[sum] = i
			}
		}
	}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

func (v *validator) log() {
	switch v.c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.errorf("log.level", "unknown level %s (want debug, info, warn or error)", quote(v.c.Log.Level))
	}
	switch v.c.Log.Format {
	case "text", "json":
	default:
		v.errorf("log.format", "unknown format %s (want text or json)", quote(v.c.Log.Format))
	}
}

// MinMemoryLimit is the smallest memory_limit accepted other than 0: below
// the gateway's idle footprint the garbage collector would run without
// pause.
const MinMemoryLimit = 64 << 20

func (v *validator) memoryLimit() {
	if l := v.c.MemoryLimit; l < 0 || l > 0 && l < MinMemoryLimit {
		v.errorf("memory_limit", "must be 0 (no limit) or at least %s, got %s", ByteSize(MinMemoryLimit), l)
	}
}

// anyPort reports whether addr asks for a kernel-chosen port (":0").
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
