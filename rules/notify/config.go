package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

// Config is the "notify" section of the gateway's configuration. Its field
// types are the ones the gateway's strict YAML decoder handles: structs,
// slices, strings, booleans, integers and [facility.Duration]. Zero values take the
// defaults documented on each field (see [Config.Defaults]).
type Config struct {
	// ExternalURL is the gateway's address as facility managers reach it
	// ("https://gw.shelter-7.example.org"). Messages link to
	// <external_url>/alarms/<alarm id>; empty leaves links out.
	ExternalURL string `yaml:"external_url"`
	// Languages are the message languages in the order they appear in
	// each message: "zh" (zh-CN) and "en". Default [zh, en].
	Languages []string `yaml:"languages"`
	// Retry bounds the backoff between attempts of one delivery.
	Retry RetryConfig `yaml:"retry"`
	// MaxAge is how long a delivery of a warning, trouble or info alarm is
	// tried before it is marked failed (default 24h). Critical and fire
	// deliveries never expire: they are tried until they get through or
	// the receiver refuses them for good.
	MaxAge facility.Duration `yaml:"max_age"`
	// MaxAttempts, when above 0, also fails a non-urgent delivery after
	// that many attempts. Default 0: only MaxAge applies.
	MaxAttempts int `yaml:"max_attempts"`
	// Concurrency is how many deliveries one channel makes at once
	// (default 2; a channel may set its own). MQTT channels default to 1.
	Concurrency int `yaml:"concurrency"`
	// KeepFinished is how long delivered and failed deliveries stay
	// visible per alarm (default 7d).
	KeepFinished facility.Duration `yaml:"keep_finished"`
	// Channels are the places notifications go.
	Channels []ChannelConfig `yaml:"channels"`
	// Routes choose the channels of each event. Without routes every
	// channel gets every event.
	Routes []Route `yaml:"routes"`
}

// RetryConfig bounds the jittered exponential backoff between attempts.
type RetryConfig struct {
	// Min is the first wait (default 1s).
	Min facility.Duration `yaml:"min"`
	// Max caps the wait (default 2m). Critical and fire deliveries wait at
	// most 30s between attempts whatever Max says.
	Max facility.Duration `yaml:"max"`
}

// Channel types.
const (
	TypeWebhook      = "webhook"
	TypeAlertmanager = "alertmanager"
	TypeEmail        = "email"
	TypeMQTT         = "mqtt"
	TypeWeCom        = "wecom"
	TypeDingTalk     = "dingtalk"
	TypeFeishu       = "feishu"
)

var channelTypes = []string{TypeWebhook, TypeAlertmanager, TypeEmail, TypeMQTT, TypeWeCom, TypeDingTalk, TypeFeishu}

// ChannelConfig configures one channel: a name, a type, and the section of
// that type (the sections of the other types must stay empty).
type ChannelConfig struct {
	// Name identifies the channel in routes, metrics, logs and the
	// delivery records: letters, digits, '.', '_' and '-'.
	Name string `yaml:"name"`
	// Type is webhook, alertmanager, email, mqtt, wecom, dingtalk or feishu.
	Type string `yaml:"type"`
	// Concurrency overrides Config.Concurrency for this channel.
	Concurrency int `yaml:"concurrency"`
	// Timeout bounds one attempt (default 10s; 30s for email).
	Timeout facility.Duration `yaml:"timeout"`
	// Languages overrides Config.Languages for this channel.
	Languages []string `yaml:"languages"`
	// Templates override the built-in message templates.
	Templates []TemplateConfig `yaml:"templates"`

	Webhook      WebhookConfig      `yaml:"webhook"`
	Alertmanager AlertmanagerConfig `yaml:"alertmanager"`
	Email        EmailConfig        `yaml:"email"`
	MQTT         MQTTConfig         `yaml:"mqtt"`
	WeCom        RobotConfig        `yaml:"wecom"`
	DingTalk     RobotConfig        `yaml:"dingtalk"`
	Feishu       RobotConfig        `yaml:"feishu"`
}

// WebhookConfig configures the generic JSON webhook (schema in README.md).
type WebhookConfig struct {
	URL string `yaml:"url"`
	// SecretFile holds the HMAC key of the X-ShelterWatch-Signature
	// header. Without it requests are not signed.
	SecretFile string `yaml:"secret_file"`
}

// AlertmanagerConfig configures a receiver of Alertmanager's webhook payload.
type AlertmanagerConfig struct {
	URL string `yaml:"url"`
}

// EmailConfig configures SMTP e-mail.
type EmailConfig struct {
	Host string `yaml:"host"`
	// Port defaults to 587 for starttls, 465 for implicit and 25 for none.
	Port int `yaml:"port"`
	// TLS is "starttls" (default), "implicit" (SMTPS) or "none". With
	// starttls the server must offer STARTTLS: there is no fallback to
	// plain text. "none" is refused unless AllowPlain is set, for a relay
	// on the facility's own network.
	TLS        string `yaml:"tls"`
	AllowPlain bool   `yaml:"allow_plain"`
	// CAFile holds PEM certificates trusted for the server besides the
	// system roots (a relay with a private CA).
	CAFile string `yaml:"ca_file"`
	// Username and PasswordFile authenticate (mechanism chosen from what
	// the server offers).
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	// From is the sender ("ShelterWatch <gw@example.org>").
	From string `yaml:"from"`
	// To receives every level that Recipients does not name.
	To []string `yaml:"to"`
	// Recipients name who is written to per escalation level: an event of
	// level L goes to the entry with the highest level <= L (or To).
	// Acknowledged and resolved events go to every level up to L.
	Recipients []LevelRecipients `yaml:"recipients"`
}

// LevelRecipients are the addresses of one escalation level.
type LevelRecipients struct {
	Level int      `yaml:"level"`
	To    []string `yaml:"to"`
}

// MQTTConfig configures the zone alarm state for sirens and panels.
type MQTTConfig struct {
	// TopicPrefix starts every topic: <prefix>/<facility>/<zone>/alarm
	// (default "shelterwatch").
	TopicPrefix string `yaml:"topic_prefix"`
}

// RobotConfig configures a WeCom, DingTalk or Feishu group robot. The
// webhook URL carries the robot's credential (key, access_token or hook
// id), so it may be read from a file and is never logged.
type RobotConfig struct {
	URL     string `yaml:"url"`
	URLFile string `yaml:"url_file"`
	// SecretFile holds the signing secret (DingTalk "加签" SEC...,
	// Feishu "签名校验"). WeCom robots have none.
	SecretFile string `yaml:"secret_file"`
	// MsgType is "markdown" (default) or "text" for WeCom and DingTalk,
	// "post" (default) or "text" for Feishu.
	MsgType string `yaml:"msgtype"`
	// MentionMobiles are mobile numbers to @ (WeCom, DingTalk).
	MentionMobiles []string `yaml:"mention_mobiles"`
	// MentionAll @s everyone in the group.
	MentionAll bool `yaml:"mention_all"`
}

// Route sends the events it matches to its channels. An event goes to the
// union of the channels of every route it matches, once per channel.
type Route struct {
	Channels []string `yaml:"channels"`
	// MinSeverity is the lowest alarm severity routed (default: all).
	MinSeverity alarm.Severity `yaml:"min_severity"`
	// Levels are the escalation levels routed (default: all). Firing,
	// escalated and repeat events match when their level is listed;
	// acknowledged and resolved events match when any listed level is at
	// or below theirs, so everyone who was paged hears the end of it.
	Levels []int `yaml:"levels"`
	// Kinds are the event kinds routed (default: all).
	Kinds []alarm.EventKind `yaml:"kinds"`
}

// TemplateConfig overrides message templates (Go text/template, see
// TemplateData). Kind limits it to one event kind; empty applies to every
// kind without its own override. Empty texts keep the default.
type TemplateConfig struct {
	Kind  alarm.EventKind `yaml:"kind"`
	Title LangText        `yaml:"title"`
	Body  LangText        `yaml:"body"`
}

// LangText is a text in both languages.
type LangText struct {
	ZH string `yaml:"zh"`
	EN string `yaml:"en"`
}

// Defaults used when a field is zero.
const (
	DefaultRetryMin     = time.Second
	DefaultRetryMax     = 2 * time.Minute
	DefaultMaxAge       = 24 * time.Hour
	DefaultConcurrency  = 2
	DefaultKeepFinished = 7 * 24 * time.Hour
	DefaultTimeout      = 10 * time.Second
	DefaultEmailTimeout = 30 * time.Second
	DefaultTopicPrefix  = "shelterwatch"
	// UrgentRetryMax caps the wait between attempts of critical and fire
	// deliveries.
	UrgentRetryMax = 30 * time.Second
)

// Defaults fills zero fields with their defaults.
func (c *Config) Defaults() {
	if len(c.Languages) == 0 {
		c.Languages = []string{"zh", "en"}
	}
	if c.Retry.Min == 0 {
		c.Retry.Min = facility.Duration(DefaultRetryMin)
	}
	if c.Retry.Max == 0 {
		c.Retry.Max = facility.Duration(max(DefaultRetryMax, c.Retry.Min.Std()))
	}
	if c.MaxAge == 0 {
		c.MaxAge = facility.Duration(DefaultMaxAge)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.KeepFinished == 0 {
		c.KeepFinished = facility.Duration(DefaultKeepFinished)
	}
	for i := range c.Channels {
		ch := &c.Channels[i]
		if ch.Concurrency == 0 {
			ch.Concurrency = c.Concurrency
			if ch.Type == TypeMQTT {
				// Zone states are published in the order events arrive.
				ch.Concurrency = 1
			}
		}
		if ch.Timeout == 0 {
			ch.Timeout = facility.Duration(DefaultTimeout)
			if ch.Type == TypeEmail {
				ch.Timeout = facility.Duration(DefaultEmailTimeout)
			}
		}
		if len(ch.Languages) == 0 {
			ch.Languages = c.Languages
		}
		switch ch.Type {
		case TypeEmail:
			e := &ch.Email
			if e.TLS == "" {
				e.TLS = "starttls"
			}
			if e.Port == 0 {
				switch e.TLS {
				case "implicit":
					e.Port = 465
				case "none":
					e.Port = 25
				default:
					e.Port = 587
				}
			}
		case TypeMQTT:
			if ch.MQTT.TopicPrefix == "" {
				ch.MQTT.TopicPrefix = DefaultTopicPrefix
			}
		case TypeWeCom, TypeDingTalk:
			if r := ch.robot(); r.MsgType == "" {
				r.MsgType = "markdown"
			}
		case TypeFeishu:
			if ch.Feishu.MsgType == "" {
				ch.Feishu.MsgType = "post"
			}
		}
	}
}

// ResolvePaths makes the relative file paths of c (secrets, CA files)
// relative to dir, the directory of the configuration file.
func (c *Config) ResolvePaths(dir string) {
	if dir == "" {
		return
	}
	fix := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Channels {
		ch := &c.Channels[i]
		fix(&ch.Webhook.SecretFile)
		fix(&ch.Email.CAFile)
		fix(&ch.Email.PasswordFile)
		for _, r := range []*RobotConfig{&ch.WeCom, &ch.DingTalk, &ch.Feishu} {
			fix(&r.URLFile)
			fix(&r.SecretFile)
		}
	}
}

func (ch *ChannelConfig) robot() *RobotConfig {
	switch ch.Type {
	case TypeWeCom:
		return &ch.WeCom
	case TypeDingTalk:
		return &ch.DingTalk
	case TypeFeishu:
		return &ch.Feishu
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Validate checks c after Defaults and returns every problem, or nil.
// Templates are parsed and executed against sample events here, so a bad
// template is reported with its key. Secret files are only checked to be
// readable; New reads them.
func (c *Config) Validate() []cfgerr.Problem {
	v := &cfgValidator{}
	if c.ExternalURL != "" {
		if u, err := url.Parse(c.ExternalURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("external_url", "want an http(s) URL such as https://gw.example.org, got %q", c.ExternalURL)
		}
	}
	v.languages("languages", c.Languages)
	if c.Retry.Min <= 0 {
		v.add("retry.min", "must be above 0")
	}
	if c.Retry.Max < c.Retry.Min {
		v.add("retry.max", "must not be below retry.min (%s)", c.Retry.Min)
	}
	if c.MaxAge <= 0 {
		v.add("max_age", "must be above 0")
	}
	if c.MaxAttempts < 0 {
		v.add("max_attempts", "must not be negative")
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		v.add("concurrency", "want 1 to 64, got %d", c.Concurrency)
	}
	if c.KeepFinished <= 0 {
		v.add("keep_finished", "must be above 0")
	}
	names := map[string]int{}
	for i := range c.Channels {
		ch := &c.Channels[i]
		key := fmt.Sprintf("channels[%d]", i)
		switch {
		case ch.Name == "":
			v.add(key+".name", "required")
		case !nameRE.MatchString(ch.Name):
			v.add(key+".name", "%q: use letters, digits, '.', '_' and '-' (at most 64)", ch.Name)
		default:
			if j, dup := names[ch.Name]; dup {
				v.add(key+".name", "duplicate channel name %q (first at channels[%d])", ch.Name, j)
			} else {
				names[ch.Name] = i
			}
		}
		v.channel(key, ch)
	}
	for i, r := range c.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if len(r.Channels) == 0 {
			v.add(key+".channels", "required: the channels this route sends to")
		}
		for j, n := range r.Channels {
			if _, ok := names[n]; !ok {
				v.add(fmt.Sprintf("%s.channels[%d]", key, j), "no channel named %q", n)
			}
		}
		if r.MinSeverity != "" && !r.MinSeverity.Valid() {
			v.add(key+".min_severity", "want info, trouble, warning, critical or fire, got %q", r.MinSeverity)
		}
		for j, l := range r.Levels {
			if l < 0 {
				v.add(fmt.Sprintf("%s.levels[%d]", key, j), "must not be negative")
			}
		}
		for j, k := range r.Kinds {
			if !validKind(k) {
				v.add(fmt.Sprintf("%s.kinds[%d]", key, j), "want firing, acknowledged, resolved, escalated or repeat, got %q", k)
			}
		}
	}
	return v.errs
}

type cfgValidator struct{ errs []cfgerr.Problem }

func (v *cfgValidator) add(key, format string, args ...any) {
	v.errs = append(v.errs, cfgerr.Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (v *cfgValidator) languages(key string, langs []string) {
	seen := map[Lang]bool{}
	for i, l := range langs {
		lang, ok := parseLang(l)
		if !ok {
			v.add(fmt.Sprintf("%s[%d]", key, i), "want zh or en, got %q", l)
			continue
		}
		if seen[lang] {
			v.add(fmt.Sprintf("%s[%d]", key, i), "%q listed twice", l)
		}
		seen[lang] = true
	}
}

func (v *cfgValidator) channel(key string, ch *ChannelConfig) {
	if !contains(channelTypes, ch.Type) {
		v.add(key+".type", "want one of %s, got %q", strings.Join(channelTypes, ", "), ch.Type)
		return
	}
	// Only the section of the channel's type may be filled in.
	rv := reflect.ValueOf(*ch)
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if f.Type.Kind() != reflect.Struct {
			continue
		}
		tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if contains(channelTypes, tag) && tag != ch.Type && !rv.Field(i).IsZero() {
			v.add(key+"."+tag, "set on a channel of type %s: these settings belong under %s", ch.Type, ch.Type)
		}
	}
	if ch.Concurrency < 1 || ch.Concurrency > 64 {
		v.add(key+".concurrency", "want 1 to 64, got %d", ch.Concurrency)
	}
	if ch.Timeout <= 0 {
		v.add(key+".timeout", "must be above 0")
	}
	v.languages(key+".languages", ch.Languages)
	for i, t := range ch.Templates {
		if t.Kind != "" && !validKind(t.Kind) {
			v.add(fmt.Sprintf("%s.templates[%d].kind", key, i), "want firing, acknowledged, resolved, escalated or repeat, got %q", t.Kind)
		}
	}
	if _, errs := compileTemplates(ch.Templates); len(errs) > 0 {
		for _, e := range errs {
			v.add(key+"."+e.Key, "%s", e.Msg)
		}
	}
	switch ch.Type {
	case TypeWebhook:
		v.httpURL(key+".webhook.url", ch.Webhook.URL)
		v.readable(key+".webhook.secret_file", ch.Webhook.SecretFile)
	case TypeAlertmanager:
		v.httpURL(key+".alertmanager.url", ch.Alertmanager.URL)
	case TypeEmail:
		v.email(key+".email", &ch.Email)
	case TypeMQTT:
		if p := ch.MQTT.TopicPrefix; strings.ContainsAny(p, "+#") || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || p == "" {
			v.add(key+".mqtt.topic_prefix", "%q: want topic levels without wildcards or leading/trailing '/'", p)
		}
	case TypeWeCom, TypeDingTalk, TypeFeishu:
		v.robot(key+"."+ch.Type, ch.Type, ch.robot())
	}
}

func (v *cfgValidator) httpURL(key, s string) {
	if s == "" {
		v.add(key, "required")
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// The URL may carry a credential: do not echo it.
		v.add(key, "want an http:// or https:// URL")
	}
}

func (v *cfgValidator) readable(key, path string) {
	if path == "" {
		return
	}
	if _, err := readSecretFile(path); err != nil {
		v.add(key, "%v", err)
	}
}

func (v *cfgValidator) email(key string, e *EmailConfig) {
	if e.Host == "" {
		v.add(key+".host", "required")
	}
	if e.Port < 1 || e.Port > 65535 {
		v.add(key+".port", "want 1 to 65535, got %d", e.Port)
	}
	switch e.TLS {
	case "starttls", "implicit":
	case "none":
		if !e.AllowPlain {
			v.add(key+".tls", "\"none\" sends mail and passwords in clear text: set allow_plain: true for a relay on the facility's own network")
		}
	default:
		v.add(key+".tls", "want starttls, implicit or none, got %q", e.TLS)
	}
	v.readable(key+".ca_file", e.CAFile)
	if e.PasswordFile != "" && e.Username == "" {
		v.add(key+".username", "required with password_file")
	}
	v.readable(key+".password_file", e.PasswordFile)
	if e.From == "" {
		v.add(key+".from", "required")
	} else if _, err := mail.ParseAddress(e.From); err != nil {
		v.add(key+".from", "%q is not a mail address: %v", e.From, err)
	}
	v.addresses(key+".to", e.To)
	for i, r := range e.Recipients {
		rk := fmt.Sprintf("%s.recipients[%d]", key, i)
		if r.Level < 0 {
			v.add(rk+".level", "must not be negative")
		}
		if len(r.To) == 0 {
			v.add(rk+".to", "required")
		}
		v.addresses(rk+".to", r.To)
	}
	if len(e.To) == 0 && len(e.Recipients) == 0 {
		v.add(key+".to", "required: who receives the mail (or recipients per level)")
	} else if len(e.To) == 0 && !hasLevel0(e.Recipients) {
		v.add(key+".to", "required when recipients has no level 0: first notifications would go nowhere")
	}
}

func hasLevel0(rs []LevelRecipients) bool {
	for _, r := range rs {
		if r.Level == 0 {
			return true
		}
	}
	return false
}

func (v *cfgValidator) addresses(key string, as []string) {
	for i, a := range as {
		if _, err := mail.ParseAddress(a); err != nil {
			v.add(fmt.Sprintf("%s[%d]", key, i), "%q is not a mail address", a)
		}
	}
}

func (v *cfgValidator) robot(key, typ string, r *RobotConfig) {
	switch {
	case r.URL != "" && r.URLFile != "":
		v.add(key+".url", "set url or url_file, not both")
	case r.URL == "" && r.URLFile == "":
		v.add(key+".url", "required (or url_file)")
	case r.URL != "":
		v.httpURL(key+".url", r.URL)
	default:
		if s, err := readSecretFile(r.URLFile); err != nil {
			v.add(key+".url_file", "%v", err)
		} else if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add(key+".url_file", "%s does not hold an http(s) URL", r.URLFile)
		}
	}
	switch typ {
	case TypeWeCom:
		if r.SecretFile != "" {
			v.add(key+".secret_file", "WeCom group robots are not signed: remove it")
		}
		if r.MsgType != "markdown" && r.MsgType != "text" {
			v.add(key+".msgtype", "want markdown or text, got %q", r.MsgType)
		}
	case TypeDingTalk:
		if r.MsgType != "markdown" && r.MsgType != "text" {
			v.add(key+".msgtype", "want markdown or text, got %q", r.MsgType)
		}
	case TypeFeishu:
		if r.MsgType != "post" && r.MsgType != "text" {
			v.add(key+".msgtype", "want post or text, got %q", r.MsgType)
		}
		if len(r.MentionMobiles) > 0 {
			v.add(key+".mention_mobiles", "Feishu custom robots mention by user id, not mobile number; use mention_all")
		}
	}
	v.readable(key+".secret_file", r.SecretFile)
	for i, m := range r.MentionMobiles {
		if m == "" || strings.Trim(m, "+0123456789") != "" {
			v.add(fmt.Sprintf("%s.mention_mobiles[%d]", key, i), "%q is not a mobile number", m)
		}
	}
}

// readSecretFile reads a secret or credential-bearing URL from path,
// without its trailing line break. Errors name the file, never the content.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			return "", fmt.Errorf("read %s: %w", path, pe.Err)
		}
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}

func validKind(k alarm.EventKind) bool {
	switch k {
	case alarm.EventFiring, alarm.EventAcknowledged, alarm.EventResolved, alarm.EventEscalated, alarm.EventRepeat:
		return true
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
