package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/rules/engine"
)

const samplePath = "../../configs/shelterwatch.example.yaml"

func loadSample(t *testing.T) *Config {
	t.Helper()
	c, err := Load(samplePath)
	if err != nil {
		t.Fatalf("the sample config does not load:\n%v", err)
	}
	return c
}

// TestSampleConfig proves the sample in the repo loads, covers what it
// promises to show, and states the same defaults as the code.
func TestSampleConfig(t *testing.T) {
	c := loadSample(t)

	t.Run("facility", func(t *testing.T) {
		if c.Facility.ID != "north-shelter-01" || c.Facility.NameZH == "" {
			t.Errorf("facility = %+v", c.Facility)
		}
		if c.Facility.Location == nil || c.Facility.Location.String() != "Asia/Shanghai" {
			t.Errorf("Location = %v, want Asia/Shanghai", c.Facility.Location)
		}
	})
	t.Run("zones", func(t *testing.T) {
		for id, tag := range map[string]string{
			"dorm-1": TagDormitory, "dorm-2": TagDormitory, "secure-ward": TagSecureWard,
			"kitchen": TagKitchen, "entrance": TagEntrance,
		} {
			z := c.ZoneByID(id)
			if z == nil || !z.HasTag(tag) || z.Name == "" || z.NameZH == "" {
				t.Errorf("zone %s = %+v, want tag %s and both names", id, z, tag)
			}
		}
	})
	t.Run("a camera and who may watch it", func(t *testing.T) {
		if len(c.Cameras) != 1 || c.Cameras[0].ID != "ward-cam" || c.Cameras[0].Zone != "secure-ward" ||
			c.Cameras[0].Grace.Std() != DefaultCameraGrace || c.Cameras[0].DownAlarmAfter.Std() != DefaultCameraDownAlarmAfter {
			t.Errorf("cameras = %+v", c.Cameras)
		}
		if c.Video.WebRTCUDP != DefaultWebRTCUDP || c.Video.MaxViewers != DefaultMaxViewers ||
			c.Video.MaxViewersPerCamera != DefaultMaxViewersPerCamera || c.Video.MaxViewersPerToken != DefaultMaxViewersPerToken {
			t.Errorf("video = %+v", c.Video)
		}
		for _, tok := range c.HTTP.Tokens {
			if want := tok.Name != "admin"; want != (len(tok.Cameras) == 1 && tok.Cameras[0] == "ward-cam") {
				t.Errorf("token %s cameras %v", tok.Name, tok.Cameras)
			}
		}
	})
	t.Run("every format is shown", func(t *testing.T) {
		seen := map[string]bool{}
		for _, d := range c.Devices {
			seen[d.Format] = true
		}
		for _, f := range Formats() {
			if !seen[f] {
				t.Errorf("no device with format %s", f)
			}
		}
		if d := c.DeviceByID("ward-exit-door"); d == nil || d.Kind != reading.KindDoor || d.Zone != "secure-ward" {
			t.Errorf("secure ward door = %+v", d)
		}
	})
	t.Run("influxdb target with the defaults written out", func(t *testing.T) {
		if len(c.Influx) != 1 {
			t.Fatalf("%d influxdb targets, want 1", len(c.Influx))
		}
		f := c.Influx[0]
		if f.ID != "facility" || f.Version != InfluxV1 || f.BucketName() != "shelterwatch" || f.BatchSize != DefaultInfluxBatchSize ||
			f.Linger.Std() != DefaultInfluxLinger || f.Timeout.Std() != DefaultInfluxTimeout || !f.GZip ||
			f.BackoffMax.Std() != DefaultInfluxBackoffMax {
			t.Errorf("influxdb[0] = %+v", f)
		}
	})
	t.Run("explicit values equal the defaults", func(t *testing.T) {
		// The sample writes most defaults out; they must be the real ones.
		checkDefaults(t, c)
	})
	t.Run("offline_after defaults by kind", func(t *testing.T) {
		for id, want := range map[string]time.Duration{
			"dorm1-smoke":    25 * time.Hour, // default for smoke
			"dorm2-climate":  time.Hour,      // default for temperature
			"kitchen-co":     time.Hour,      // default for co
			"entrance-panic": 25 * time.Hour, // default for panic
			"dorm1-ht":       3 * time.Hour,  // set in the file
		} {
			if got := c.DeviceByID(id).OfflineAfter.Std(); got != want {
				t.Errorf("%s offline_after = %v, want %v", id, got, want)
			}
		}
	})
	t.Run("hashes are distinct", func(t *testing.T) {
		seen := map[Secret]bool{}
		hashes := []Secret{c.Broker.Embedded.Users[0].PasswordHash}
		for _, d := range c.Devices {
			if d.PasswordHash != "" {
				hashes = append(hashes, d.PasswordHash)
			}
		}
		for _, h := range hashes {
			if seen[h] {
				t.Errorf("a password hash is used twice")
			}
			seen[h] = true
		}
	})
}

// checkDefaults asserts the values every config gets when it leaves the keys
// out, and the sample writes out.
func checkDefaults(t *testing.T, c *Config) {
	t.Helper()
	for _, tc := range []struct {
		key       string
		got, want any
	}{
		{"broker.mode", c.Broker.Mode, ModeEmbedded},
		{"broker.embedded.listen", c.Broker.Embedded.Listen, "127.0.0.1:1883"},
		{"broker.embedded.tls_listen", c.Broker.Embedded.TLSListen, ""},
		{"broker.embedded.allow_anonymous", c.Broker.Embedded.AllowAnonymous, false},
		{"broker.embedded.max_packet_bytes", c.Broker.Embedded.MaxPacketBytes, ByteSize(DefaultMaxPacketBytes)},
		{"broker.external.client_id", c.Broker.External.ClientID, "shelterwatch-north-shelter-01"},
		{"broker.external.max_in_flight", c.Broker.External.MaxInFlight, 1000},
		{"broker.external.reconnect_max", c.Broker.External.ReconnectMax.Std(), 30 * time.Second},
		{"broker.external.keep_alive", c.Broker.External.KeepAlive.Std(), 30 * time.Second},
		{"store.retention", c.Store.Retention.Std(), 90 * 24 * time.Hour},
		{"store.disk_budget", c.Store.DiskBudget, ByteSize(4 << 30)},
		{"store.commit_max_batch", c.Store.CommitMaxBatch, 4096},
		{"ingest.max_payload_bytes", c.Ingest.MaxPayloadBytes, ByteSize(65536)},
		{"ingest.dead_letter_max", c.Ingest.DeadLetterMax, 10000},
		{"ingest.max_clock_skew", c.Ingest.MaxClockSkew.Std(), 10 * time.Minute},
		{"alarms.audit.rotate_bytes", c.Alarms.Audit.RotateBytes, ByteSize(64 << 20)},
		{"alarms.audit.rotate_every", c.Alarms.Audit.RotateEvery.Std(), time.Duration(0)},
		{"alarms.audit.keep", c.Alarms.Audit.Keep, 16},
		{"alarms.audit.max_age", c.Alarms.Audit.MaxAge.Std(), time.Duration(0)},
		{"http.listen", c.HTTP.Listen, "127.0.0.1:8080"},
		{"http.write_timeout", c.HTTP.WriteTimeout.Std(), time.Minute},
		{"http.metrics_listen", c.HTTP.MetricsListen, ""},
		{"http.metrics_auth", c.HTTP.MetricsAuth, MetricsToken},
		{"log.level", c.Log.Level, "info"},
		{"log.format", c.Log.Format, "text"},
		{"memory_limit", c.MemoryLimit, ByteSize(256 << 20)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.key, tc.got, tc.want)
		}
	}
}

const minimal = `facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  - id: dorm-1
devices:
  - id: dorm1-smoke
    kind: smoke
    zone: dorm-1
    format: zigbee2mqtt
    topic: zigbee2mqtt/dorm1-smoke
  - id: dorm1-temp
    kind: temperature
    zone: dorm-1
    format: native
    topic: sw/dorm1-temp
store:
  dir: /var/lib/shelterwatch
`

func TestMinimalConfigGetsEveryDefault(t *testing.T) {
	c, err := Parse([]byte(minimal), "minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checkDefaults(t, c)

	want := &Config{
		Facility: Facility{ID: "north-shelter-01", Name: "North", Timezone: "Asia/Shanghai"},
		Zones:    []Zone{{ID: "dorm-1"}},
		Devices: []Device{
			{ID: "dorm1-smoke", Kind: reading.KindSmoke, Zone: "dorm-1", Format: FormatZigbee2MQTT,
				Topic: "zigbee2mqtt/dorm1-smoke", OfflineAfter: Duration(25 * time.Hour)},
			{ID: "dorm1-temp", Kind: reading.KindTemperature, Zone: "dorm-1", Format: FormatNative,
				Topic: "sw/dorm1-temp", OfflineAfter: Duration(time.Hour)},
		},
		Broker: Broker{
			Mode: ModeEmbedded,
			Embedded: Embedded{Listen: DefaultEmbeddedListen, MaxPacketBytes: DefaultMaxPacketBytes,
				ConnectTimeout: Duration(DefaultConnectTimeout), MaxClients: DefaultMaxClients, MaxClientsPerAddress: DefaultMaxClientsPerIP,
				MaxSessionExpiry: Duration(DefaultSessionExpiry), MaxSessionsPerUser: DefaultSessionsPerUser, MaxPasswordChecks: DefaultPasswordChecks},
			External: External{
				ClientID:     "shelterwatch-north-shelter-01",
				MaxInFlight:  DefaultMaxInFlight,
				ReconnectMax: Duration(DefaultReconnectMax),
				KeepAlive:    Duration(DefaultKeepAlive),
			},
		},
		Store: Store{Dir: "/var/lib/shelterwatch", Retention: Duration(DefaultRetention),
			DiskBudget: DefaultDiskBudget, CommitMaxBatch: DefaultCommitMaxBatch,
			DiskReserve: DefaultDiskReserve, BallastBytes: DefaultBallastBytes},
		Ingest: Ingest{MaxPayloadBytes: DefaultMaxPayloadBytes, DeadLetterMax: DefaultDeadLetterMax,
			MaxClockSkew: Duration(DefaultMaxClockSkew)},
		Alarms: Alarms{Dir: "/var/lib/shelterwatch-alarms", BuiltinRules: true,
			Escalation: []Duration{Duration(5 * time.Minute), Duration(15 * time.Minute)}, Repeat: Duration(DefaultAlarmRepeat),
			Audit: Audit{RotateBytes: DefaultAuditRotate, Keep: DefaultAuditKeep}},
		Hazards: Hazards{Responsible: DefaultHazardResponsible, ColdSeason: "11-01..03-31", HotSeason: "06-01..09-30"},
		Reports: Reports{Schedule: []string{"notice"}, Keep: DefaultReportKeep, SupervisedTag: DefaultSupervisedTag, DepartmentLevel: 2},
		Backup:  Backup{At: DefaultBackupAt, Keep: DefaultBackupKeep},
		Video: Video{WebRTCUDP: DefaultWebRTCUDP, MaxViewers: DefaultMaxViewers, MaxViewersPerCamera: DefaultMaxViewersPerCamera,
			MaxViewersPerToken: DefaultMaxViewersPerToken},
		HTTP: HTTP{Listen: DefaultHTTPListen, ReadTimeout: Duration(DefaultHTTPReadTimeout), IdleTimeout: Duration(DefaultHTTPIdleTimeout), MaxConnections: DefaultHTTPMaxConns,
			WriteTimeout: Duration(DefaultHTTPWriteTimeout), MetricsAuth: MetricsToken,
			SessionIdle: Duration(DefaultSessionIdle), SessionMax: Duration(DefaultSessionMax)},
		Log:         Log{Level: "info", Format: "text"},
		MemoryLimit: DefaultMemoryLimit,
	}
	want.Notify.Defaults()
	got := *c
	got.src, got.Facility.Location = nil, nil
	if !reflect.DeepEqual(&got, want) {
		t.Errorf("minimal config decoded to\n%+v\nwant\n%+v", &got, want)
	}
	if c.Facility.Location == nil || c.Facility.Location.String() != "Asia/Shanghai" {
		t.Errorf("Location = %v", c.Facility.Location)
	}
}

func TestNullMeansDefault(t *testing.T) {
	c, err := Parse([]byte(minimal+"  retention:\nbroker:\n  embedded:\n    listen: ~\nlog:\n"), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Retention.Std() != DefaultRetention || c.Broker.Embedded.Listen != DefaultEmbeddedListen {
		t.Errorf("retention %v, listen %q: want the defaults", c.Store.Retention, c.Broker.Embedded.Listen)
	}
}

// An ESPHome node's birth and will, set on one device of its board,
// reach the facility model of that device as written.
func TestESPHomeBirthAndWill(t *testing.T) {
	c, err := Parse([]byte(`facility:
  id: north-shelter-01
  name: North
  timezone: Asia/Shanghai
zones:
  - id: dorm-1
devices:
  - {id: dorm1-smoke, kind: smoke, zone: dorm-1, format: esphome, topic: dorm1-node, channel: smoke,
     status_topic: dorm1-node/availability, online_payload: connected, offline_payload: disconnected}
  - {id: dorm1-door, kind: door, zone: dorm-1, format: esphome, topic: dorm1-node, channel: door}
store:
  dir: /var/lib/shelterwatch
`), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := c.Devices[0].Model()
	if m.StatusTopic != "dorm1-node/availability" || m.OnlinePayload != "connected" || m.OfflinePayload != "disconnected" {
		t.Errorf("model = %+v, want the node's birth and will", m)
	}
	if m := c.Devices[1].Model(); m.StatusTopic != "" || m.OnlinePayload != "" || m.OfflinePayload != "" {
		t.Errorf("the other device's model = %+v, want the defaults (the pipeline shares the board's)", m)
	}
}

func TestExplicitEmptyListenDisablesIt(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"cert.pem", "key.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "shelterwatch.yaml")
	cfg := minimal + `broker:
  embedded:
    listen: ""
    tls_listen: 0.0.0.0:8883
    tls_cert_file: cert.pem
    tls_key_file: key.pem
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Broker.Embedded.Listen != "" {
		t.Errorf("listen = %q, want disabled", c.Broker.Embedded.Listen)
	}
}

// Relative paths in a loaded file are relative to the file, not to the
// directory the gateway was started in.
func TestLoadResolvesRelativePaths(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "mqtt-password"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(minimal, "dir: /var/lib/shelterwatch", "dir: data", 1) + `broker:
  mode: external
  external:
    url: mqtts://broker.example:8883
    username: north
    password_file: secrets/mqtt-password
`
	path := filepath.Join(dir, "shelterwatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "data"); c.Store.Dir != want {
		t.Errorf("store.dir = %q, want %q", c.Store.Dir, want)
	}
	pw, err := c.Broker.External.Password()
	if err != nil {
		t.Fatal(err)
	}
	if pw.Reveal() != "s3cret" {
		t.Errorf("password = %q (revealed), want s3cret without the newline", pw.Reveal())
	}

	// Parse has no file to be relative to: the same text fails here.
	_, err = Parse([]byte(cfg), "shelterwatch.yaml")
	want := `shelterwatch.yaml:25: broker.external.password_file: cannot use file "secrets/mqtt-password": no such file or directory`
	if err == nil || err.Error() != want {
		t.Errorf("Parse error = %v, want %s", err, want)
	}
}

func TestInfluxTargets(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"influx-pass": "pw1\n", "province-token": "tok-123\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := minimal + `influxdb:
  - id: facility
    url: http://127.0.0.1:8086
    version: 1
    database: shelter
    retention_policy: one_year
    username: gateway
    password_file: influx-pass
  - id: province
    url: https://influx.example
    version: 2
    org: civil-affairs
    bucket: shelters
    token_file: province-token
    batch_size: 2000
    linger: 0s
    gzip: false
`
	path := filepath.Join(dir, "shelterwatch.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Influx) != 2 {
		t.Fatalf("%d targets", len(c.Influx))
	}
	f, p := c.Influx[0], c.Influx[1]
	if f.BucketName() != "shelter/one_year" || p.BucketName() != "shelters" {
		t.Errorf("buckets %q, %q", f.BucketName(), p.BucketName())
	}
	if f.BatchSize != DefaultInfluxBatchSize || f.Linger.Std() != DefaultInfluxLinger || !f.GZip ||
		f.Timeout.Std() != DefaultInfluxTimeout || f.BackoffMax.Std() != DefaultInfluxBackoffMax {
		t.Errorf("defaults not applied: %+v", f)
	}
	if p.BatchSize != 2000 || p.Linger != 0 || p.GZip {
		t.Errorf("explicit values not kept: %+v", p)
	}
	for _, tc := range []struct {
		target InfluxTarget
		want   string
	}{{f, "gateway:pw1"}, {p, "tok-123"}} {
		tok, err := tc.target.Token()
		if err != nil || tok.Reveal() != tc.want {
			t.Errorf("%s token = %q, %v; want %q", tc.target.ID, tok.Reveal(), err, tc.want)
		}
		if fmt.Sprint(tok) != "[redacted]" {
			t.Errorf("token prints as %q", fmt.Sprint(tok))
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load of a missing file: %v, want a not-exist error", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestPasswordWithoutFile(t *testing.T) {
	pw, err := External{}.Password()
	if pw != "" || err != nil {
		t.Errorf("Password() = %q, %v; want empty, nil", pw.Reveal(), err)
	}
}

// TestValidateWithoutSource checks a Config built in code: errors name keys
// but no file or line.
func TestValidateWithoutSource(t *testing.T) {
	c, err := Parse([]byte(minimal), "t.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// A loaded config carries no map of its keys' lines (5 MB at 10,000
	// devices) until a Validate asks for one.
	if c.src.lines != nil || c.src.set != nil {
		t.Error("the parsed config kept its key maps")
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate of a parsed config: %v", err)
	}

	c2 := *c
	c2.src = nil
	c2.Devices = append([]Device(nil), c.Devices...)
	c2.Devices[1].Zone = "dorm-9"
	c2.Store.Retention = 0
	want := "devices[1].zone: unknown zone \"dorm-9\"\nstore.retention: must be greater than 0, got 0s"
	if err := c2.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want\n%s", err, want)
	}

	// The original keeps its lines.
	c.Devices[0].Zone = "dorm-9"
	want = `t.yaml:10: devices[0].zone: unknown zone "dorm-9"`
	if err := c.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate = %v, want %s", err, want)
	}
}

func TestDefaultOfflineAfter(t *testing.T) {
	for _, tc := range []struct {
		kind reading.Kind
		want time.Duration
	}{
		{reading.KindSmoke, 25 * time.Hour},
		{reading.KindDoor, 25 * time.Hour},
		{reading.KindMotion, 25 * time.Hour},
		{reading.KindWaterLeak, 25 * time.Hour},
		{reading.KindPanic, 25 * time.Hour},
		{reading.KindTamper, 25 * time.Hour},
		{reading.KindBattery, 25 * time.Hour},
		{reading.KindBatteryLow, 25 * time.Hour},
		{reading.KindAvailability, 25 * time.Hour},
		{reading.KindTemperature, time.Hour},
		{reading.KindHumidity, time.Hour},
		{reading.KindPressure, time.Hour},
		{reading.KindCO, time.Hour},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			if got := DefaultOfflineAfter(tc.kind); got != tc.want {
				t.Errorf("DefaultOfflineAfter(%s) = %v, want %v", tc.kind, got, tc.want)
			}
		})
	}
	for _, k := range reading.Kinds() {
		if DefaultOfflineAfter(k) <= 0 {
			t.Errorf("no default for kind %s", k)
		}
	}
}

// Formats repeats the decoder names so that config does not import the
// decoders; this keeps the two lists the same.
func TestFormatsMatchDecoders(t *testing.T) {
	decoders := decode.All()
	for _, f := range Formats() {
		if _, ok := decoders[f]; !ok {
			t.Errorf("format %q has no decoder", f)
		}
	}
	if len(decoders) != len(Formats()) {
		t.Errorf("decoders %v, Formats %v", decoders, Formats())
	}
}

func TestLookups(t *testing.T) {
	c := loadSample(t)
	if d := c.DeviceByID("kitchen-leak"); d == nil || d.Kind != reading.KindWaterLeak {
		t.Errorf("DeviceByID(kitchen-leak) = %+v", d)
	}
	if d := c.DeviceByID("nope"); d != nil {
		t.Errorf("DeviceByID(nope) = %+v, want nil", d)
	}
	if z := c.ZoneByID("kitchen"); z == nil || z.NameZH != "厨房" {
		t.Errorf("ZoneByID(kitchen) = %+v", z)
	}
	if z := c.ZoneByID("nope"); z != nil {
		t.Errorf("ZoneByID(nope) = %+v, want nil", z)
	}
}

// TestNothingSecretIsLogged logs and prints the sample config every way a
// developer might, and looks for any hash in the output.
func TestNothingSecretIsLogged(t *testing.T) {
	c := loadSample(t)
	var secrets []string
	for _, d := range c.Devices {
		if d.PasswordHash != "" {
			secrets = append(secrets, d.PasswordHash.Reveal())
		}
	}
	for _, u := range c.Broker.Embedded.Users {
		secrets = append(secrets, u.PasswordHash.Reveal())
	}
	for _, tok := range c.HTTP.Tokens {
		secrets = append(secrets, tok.SHA256.Reveal())
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("config", "config", c)
		l.Info("device", "device", c.Devices[3], "hash", c.Devices[3].PasswordHash)
		l.Info("token", "token", c.HTTP.Tokens[0])
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		fmt.Fprintf(&buf, verb+"\n", *c)
		fmt.Fprintf(&buf, verb+"\n", c.Devices[3].PasswordHash)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	buf.Write(j)

	out := buf.String()
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, fmt.Sprintf("%x", s)) {
			t.Fatalf("a secret appears in the output:\n%s", out)
		}
	}
	if !strings.Contains(out, "[redacted]") {
		t.Errorf("no [redacted] in the output")
	}
	if !strings.Contains(out, "facility=north-shelter-01") {
		t.Errorf("the config summary lacks the facility:\n%s", out)
	}
}

func TestByteSize(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    int64
		str     string
		wantErr string
	}{
		{in: "4GiB", want: 4 << 30, str: "4GiB"},
		{in: "512MiB", want: 512 << 20, str: "512MiB"},
		{in: "10MB", want: 10_000_000, str: "10MB"},
		{in: "1024", want: 1024, str: "1KiB"},
		{in: "65536", want: 65536, str: "64KiB"},
		{in: "1000", want: 1000, str: "1KB"},
		{in: "123B", want: 123, str: "123B"},
		{in: "1TiB", want: 1 << 40, str: "1TiB"},
		{in: "2 gib", want: 2 << 30, str: "2GiB"},
		{in: "1.5GiB", want: 3 << 29, str: "1536MiB"},
		{in: "0", want: 0, str: "0B"},
		{in: "-1", wantErr: `negative byte size "-1"`},
		{in: "4 gigs", wantErr: `invalid byte size "4 gigs": unknown unit "gigs" (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)`},
		{in: "GiB", wantErr: `invalid byte size "GiB"`},
		{in: "1e3", wantErr: `invalid byte size "1e3"`},
		{in: "9999999TiB", wantErr: `invalid byte size "9999999TiB": too large`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			b, err := ParseByteSize(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("ParseByteSize(%q) = %v, %v; want error %s", tc.in, b, err, tc.wantErr)
				}
				return
			}
			if err != nil || int64(b) != tc.want || b.String() != tc.str {
				t.Errorf("ParseByteSize(%q) = %d (%s), %v; want %d (%s)", tc.in, int64(b), b, err, tc.want, tc.str)
			}
			if back, err := ParseByteSize(b.String()); err != nil || back != b {
				t.Errorf("String %q does not parse back: %v, %v", b, back, err)
			}
		})
	}
}

// TestAliasesAreBounded feeds a small file whose aliases expand to millions
// of values: it must fail fast, not exhaust memory.
func TestAliasesAreBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString(base)
	b.WriteString("broker:\n  embedded:\n    users:\n      - &u\n        username: a\n        publish: [")
	for i := range 2000 {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("x")
	}
	b.WriteString("]\n")
	for range 2000 {
		b.WriteString("      - *u\n")
	}
	start := time.Now()
	_, err := Parse([]byte(b.String()), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), "document too large") {
		t.Errorf("error = %.500v, want document too large", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestRulesFileAndSampleRules(t *testing.T) {
	c := loadSample(t)
	all := c.AllRules(nil)
	var cold *engine.RuleConfig
	for i := range all {
		if all[i].ID == "dorm-cold" {
			cold = &all[i]
		}
	}
	if cold == nil || cold.When != "value < 18" || len(all) != len(engine.Builtin())+len(engine.GatewayRules())+1 {
		t.Fatalf("sample rules: %d rules, dorm-cold %+v", len(all), cold)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(path, []byte("rules:\n  - id: extra\n    when: \"true\"\n    severity: info\n    title: {en: x}\n    colour: red\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRulesFile(path)
	if err == nil || err.Error() != path+":6: rules[0].colour: unknown key" {
		t.Fatalf("rules file error: %v", err)
	}
	if err := os.WriteFile(path, []byte("rules:\n  - id: extra\n    when: \"true\"\n    severity: info\n    title: {en: x}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs, err := LoadRulesFile(path)
	if err != nil || len(rs) != 1 || rs[0].ID != "extra" {
		t.Fatalf("rules file: %+v %v", rs, err)
	}
}
