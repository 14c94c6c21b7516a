package config

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/forward"
)

// InfluxTarget is one InfluxDB the gateway forwards every reading to (the
// facility's own, the province's...). Each keeps its own position in the
// store, so one being away never holds back another.
type InfluxTarget struct {
	// ID names the target in metrics, logs and the API: lower-case
	// letters, digits and '-'; unique. Required.
	ID string `yaml:"id"`
	// URL is the server's base URL (http or https), without credentials.
	// Required.
	URL string `yaml:"url"`
	// Version is 1 for InfluxDB 1.8+ (its 2.x-compatible API) or 2 for
	// InfluxDB 2.x and 3.x. Required.
	Version int `yaml:"version"`

	// Database and RetentionPolicy (optional: the default policy) name
	// where points go on InfluxDB 1.8+. Database is required with
	// version 1.
	Database        string `yaml:"database"`
	RetentionPolicy string `yaml:"retention_policy"`
	// Username and PasswordFile authenticate on InfluxDB 1.8+ with
	// authentication on (both or neither).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`

	// Org, Bucket and TokenFile (a file holding the API token) are
	// required with version 2.
	Org       string `yaml:"org"`
	Bucket    string `yaml:"bucket"`
	TokenFile string `yaml:"token_file"`

	// CAFile verifies an https server's certificate. Optional.
	CAFile string `yaml:"ca_file"`

	// MeasurementPrefix is put in front of each kind to name measurements
	// ("sw_" gives sw_temperature). Default "" (temperature, smoke, ...).
	MeasurementPrefix string `yaml:"measurement_prefix"`
	// BatchSize caps the points per write. Default 5000.
	BatchSize int `yaml:"batch_size"`
	// Linger is how long a partial batch of live readings may wait for
	// more; 0s sends at once. Default 1s.
	Linger Duration `yaml:"linger"`
	// Timeout bounds one write request. Default 10s.
	Timeout Duration `yaml:"timeout"`
	// GZip compresses request bodies. Default true.
	GZip bool `yaml:"gzip"`
	// BackoffMax caps the delay between retries. Default 1m.
	BackoffMax Duration `yaml:"backoff_max"`
	// StalledAfter is how old the oldest unforwarded reading may get
	// before the alarm forward-stalled@dev:gateway.influx.<id> fires.
	// Default 15m.
	StalledAfter Duration `yaml:"stalled_after"`
}

// Defaults of an InfluxDB target.
const (
	DefaultInfluxBatchSize    = forward.DefaultBatchSize
	DefaultInfluxLinger       = forward.DefaultLinger
	DefaultInfluxTimeout      = forward.DefaultTimeout
	DefaultInfluxBackoffMax   = forward.DefaultBackoffMax
	DefaultInfluxStalledAfter = forward.DefaultStalledAfter
	// MaxInfluxBatchSize bounds batch_size: InfluxDB itself advises
	// batches of 5,000-10,000 points.
	MaxInfluxBatchSize = 100000
)

// Influx versions.
const (
	InfluxV1 = 1
	InfluxV2 = 2
)

// BucketName is the bucket the write API gets: "db/rp" (or "db") on
// InfluxDB 1.8+, the bucket on 2.x.
func (t *InfluxTarget) BucketName() string {
	if t.Version == InfluxV1 {
		if t.RetentionPolicy != "" {
			return t.Database + "/" + t.RetentionPolicy
		}
		return t.Database
	}
	return t.Bucket
}

// Token reads the credential sent as "Authorization: Token ...": the
// token file's content on 2.x, "username:password" on 1.8+ (empty when
// authentication is off).
func (t *InfluxTarget) Token() (Secret, error) {
	read := func(path, what string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("config: influxdb %s: read %s: %w", t.ID, what, err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", fmt.Errorf("config: influxdb %s: %s file %s is empty", t.ID, what, path)
		}
		return s, nil
	}
	switch {
	case t.Version == InfluxV2 && t.TokenFile != "":
		s, err := read(t.TokenFile, "token")
		return Secret(s), err
	case t.Version == InfluxV1 && t.PasswordFile != "":
		s, err := read(t.PasswordFile, "password")
		return Secret(t.Username + ":" + s), err
	}
	return "", nil
}

func (c *Config) influxDefaults() {
	for i := range c.Influx {
		t := &c.Influx[i]
		p := idx("influxdb", i)
		if !c.src.isSet(p + ".batch_size") {
			t.BatchSize = DefaultInfluxBatchSize
		}
		if !c.src.isSet(p + ".linger") {
			t.Linger = Duration(DefaultInfluxLinger)
		}
		if !c.src.isSet(p + ".timeout") {
			t.Timeout = Duration(DefaultInfluxTimeout)
		}
		if !c.src.isSet(p + ".backoff_max") {
			t.BackoffMax = Duration(DefaultInfluxBackoffMax)
		}
		if !c.src.isSet(p + ".stalled_after") {
			t.StalledAfter = Duration(DefaultInfluxStalledAfter)
		}
		if !c.src.isSet(p + ".gzip") {
			t.GZip = true
		}
	}
}

func (v *validator) influx() {
	ids := map[string]int{}
	for i := range v.c.Influx {
		t := &v.c.Influx[i]
		p := idx("influxdb", i)
		if v.id(p+".id", t.ID, facilityIDRE, "lower-case letters, digits and '-'") {
			v.unique(ids, "influxdb", "influxdb target", t.ID, i)
		}
		if t.URL == "" {
			v.errorf(p+".url", "required")
		} else if u, err := url.Parse(t.URL); err != nil {
			v.errorf(p+".url", "invalid URL %s", quote(t.URL))
		} else {
			switch {
			case u.User != nil:
				v.errorf(p+".url", "credentials in the URL are not allowed: use username and password_file, or token_file")
			case u.Scheme != "http" && u.Scheme != "https":
				v.errorf(p+".url", "unsupported scheme %s (want http or https)", quote(u.Scheme))
			case u.Hostname() == "":
				v.errorf(p+".url", "URL %s has no host", quote(t.URL))
			case u.RawQuery != "":
				v.errorf(p+".url", "URL %s must not have a query: the gateway adds org and bucket", quote(t.URL))
			}
		}
		// Keys of the other version are errors, not silently ignored: a
		// token_file on a 1.8 target would mean the operator expects it to
		// be used.
		only := func(version int, keys map[string]string) {
			for key, val := range keys {
				if val != "" {
					v.errorf(p+"."+key, "only for version %d", version)
				}
			}
		}
		switch t.Version {
		case InfluxV1:
			v.required(p+".database", t.Database)
			only(InfluxV2, map[string]string{"org": t.Org, "bucket": t.Bucket, "token_file": t.TokenFile})
			switch {
			case t.Username != "" && t.PasswordFile == "":
				v.errorf(p+".username", "needs password_file")
			case t.Username == "" && t.PasswordFile != "":
				v.errorf(p+".password_file", "needs a username")
			case t.PasswordFile != "":
				v.file(p+".password_file", t.PasswordFile)
			}
			if strings.Contains(t.Database, "/") {
				v.errorf(p+".database", "must not contain '/' (set retention_policy separately)")
			}
		case InfluxV2:
			v.required(p+".org", t.Org)
			v.required(p+".bucket", t.Bucket)
			if v.required(p+".token_file", t.TokenFile); t.TokenFile != "" {
				v.file(p+".token_file", t.TokenFile)
			}
			only(InfluxV1, map[string]string{"database": t.Database, "retention_policy": t.RetentionPolicy,
				"username": t.Username, "password_file": t.PasswordFile})
		default:
			v.errorf(p+".version", "must be 1 (InfluxDB 1.8+) or 2 (InfluxDB 2.x/3.x), got %d", t.Version)
		}
		if t.CAFile != "" {
			v.file(p+".ca_file", t.CAFile)
		}
		if t.BatchSize <= 0 || t.BatchSize > MaxInfluxBatchSize {
			v.errorf(p+".batch_size", "must be from 1 to %d, got %s", MaxInfluxBatchSize, strconv.Itoa(t.BatchSize))
		}
		v.positive(p+".timeout", int64(t.Timeout), t.Timeout.String())
		v.positive(p+".backoff_max", int64(t.BackoffMax), t.BackoffMax.String())
		v.positive(p+".stalled_after", int64(t.StalledAfter), t.StalledAfter.String())
	}
}
