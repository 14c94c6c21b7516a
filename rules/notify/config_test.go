package notify

import (
	"bytes"
	"encoding"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/facility"
	"github.com/shelterwatch/shelterwatch/rules/alarm"
)

func loadExample(t *testing.T) Config {
	t.Helper()
	data, err := os.ReadFile("testdata/notify.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("decode example: %v", err)
	}
	abs, _ := filepath.Abs("testdata")
	cfg.ResolvePaths(abs)
	cfg.Defaults()
	return cfg
}

type nopPublisher struct{}

func (nopPublisher) Publish(string, []byte, bool, byte) error { return nil }

func TestExampleConfigLoads(t *testing.T) {
	cfg := loadExample(t)
	if errs := cfg.Validate(); len(errs) > 0 {
		t.Fatalf("example config: %v", cfgerr.Err("notify", errs))
	}
	if cfg.Retry.Max.Std() != 2*time.Minute || cfg.KeepFinished.Std() != 7*24*time.Hour || len(cfg.Channels) != 7 {
		t.Fatalf("example config decoded as %+v", cfg)
	}
	byName := map[string]ChannelConfig{}
	for _, c := range cfg.Channels {
		byName[c.Name] = c
	}
	if c := byName["panels"]; c.Concurrency != 1 || c.Timeout.Std() != DefaultTimeout {
		t.Fatalf("mqtt channel defaults: concurrency %d timeout %v", c.Concurrency, c.Timeout)
	}
	if c := byName["dingtalk-duty"]; c.DingTalk.MsgType != "markdown" || c.Concurrency != 2 {
		t.Fatalf("dingtalk defaults: %+v", c)
	}
	o, err := New(cfg, Env{Dir: t.TempDir(), Publisher: nopPublisher{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	run(t, o)
	escalated := event("door/1", alarm.SeverityCritical, alarm.EventEscalated)
	escalated.Level = 1
	if got := strings.Join(o.Route(escalated), " "); got != "ops-webhook alertmanager-bridge duty-mail panels feishu-civil" {
		t.Fatalf("escalation routed to %s", got)
	}
}

// The gateway decodes the notify section with its own strict decoder,
// which knows structs, slices, strings, booleans, integers and text
// unmarshalers, and nothing else (no maps, pointers or floats).
func TestConfigTypesSuitTheGatewayDecoder(t *testing.T) {
	tu := reflect.TypeFor[encoding.TextUnmarshaler]()
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		if reflect.PointerTo(typ).Implements(tu) {
			return
		}
		switch typ.Kind() {
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if name == "" || name == "-" {
					t.Errorf("%s.%s has no yaml name", path, f.Name)
					continue
				}
				walk(f.Type, path+"."+name)
			}
		case reflect.Slice:
			walk(typ.Elem(), path+"[]")
		case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
		default:
			t.Errorf("%s is a %s, which the gateway's decoder cannot fill", path, typ)
		}
	}
	walk(reflect.TypeFor[Config](), "notify")
}

func TestConfigValidate(t *testing.T) {
	good := func() Config {
		return Config{Channels: []ChannelConfig{
			{Name: "hook", Type: TypeWebhook, Webhook: WebhookConfig{URL: "https://ops.example.org/h"}},
			{Name: "mail", Type: TypeEmail, Email: EmailConfig{Host: "smtp.example.org", From: "gw@example.org", To: []string{"a@example.org"}}},
			{Name: "ding", Type: TypeDingTalk, DingTalk: RobotConfig{URL: "https://oapi.dingtalk.com/robot/send?access_token=x"}},
		}, Routes: []Route{{Channels: []string{"hook", "mail"}, MinSeverity: alarm.SeverityWarning}}}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(c *Config)
		key     string
		message string
	}{
		{"good", func(*Config) {}, "", ""},
		{"duplicate name", func(c *Config) { c.Channels[1].Name = "hook" }, "channels[1].name", `duplicate channel name "hook"`},
		{"bad name", func(c *Config) { c.Channels[0].Name = "ops hook" }, "channels[0].name", "use letters"},
		{"unknown type", func(c *Config) { c.Channels[0].Type = "sms" }, "channels[0].type", `got "sms"`},
		{"section of another type", func(c *Config) { c.Channels[0].Email.Host = "x" }, "channels[0].email", "belong under webhook"},
		{"webhook without url", func(c *Config) { c.Channels[0].Webhook.URL = "" }, "channels[0].webhook.url", "required"},
		{"webhook url not http", func(c *Config) { c.Channels[0].Webhook.URL = "ftp://x/secret" }, "channels[0].webhook.url", "http"},
		{"missing secret file", func(c *Config) { c.Channels[0].Webhook.SecretFile = "/nonexistent/secret" }, "channels[0].webhook.secret_file", "no such file"},
		{"plain SMTP not allowed", func(c *Config) { c.Channels[1].Email.TLS = "none" }, "channels[1].email.tls", "allow_plain"},
		{"bad tls mode", func(c *Config) { c.Channels[1].Email.TLS = "ssl" }, "channels[1].email.tls", `got "ssl"`},
		{"bad from", func(c *Config) { c.Channels[1].Email.From = "not an address" }, "channels[1].email.from", "not a mail address"},
		{"no recipients", func(c *Config) { c.Channels[1].Email.To = nil }, "channels[1].email.to", "required"},
		{"recipients without level 0", func(c *Config) {
			c.Channels[1].Email.To = nil
			c.Channels[1].Email.Recipients = []LevelRecipients{{Level: 1, To: []string{"d@example.org"}}}
		}, "channels[1].email.to", "no level 0"},
		{"bad recipient", func(c *Config) { c.Channels[1].Email.To = []string{"x"} }, "channels[1].email.to[0]", "not a mail address"},
		{"password without user", func(c *Config) { c.Channels[1].Email.PasswordFile = "testdata/secrets/smtp.pass" }, "channels[1].email.username", "required"},
		{"robot url twice", func(c *Config) { c.Channels[2].DingTalk.URLFile = "testdata/secrets/dingtalk.url" }, "channels[2].dingtalk.url", "not both"},
		{"robot bad msgtype", func(c *Config) { c.Channels[2].DingTalk.MsgType = "card" }, "channels[2].dingtalk.msgtype", `got "card"`},
		{"wecom has no secret", func(c *Config) {
			c.Channels[2] = ChannelConfig{Name: "wc", Type: TypeWeCom, WeCom: RobotConfig{URL: "https://qyapi.weixin.qq.com/x", SecretFile: "testdata/secrets/feishu.secret"}}
		}, "channels[2].wecom.secret_file", "not signed"},
		{"feishu mentions by mobile", func(c *Config) {
			c.Channels[2] = ChannelConfig{Name: "fs", Type: TypeFeishu, Feishu: RobotConfig{URL: "https://open.feishu.cn/x", MentionMobiles: []string{"138"}}}
		}, "channels[2].feishu.mention_mobiles", "mention_all"},
		{"bad mobile", func(c *Config) { c.Channels[2].DingTalk.MentionMobiles = []string{"abc"} }, "channels[2].dingtalk.mention_mobiles[0]", "not a mobile"},
		{"bad language", func(c *Config) { c.Languages = []string{"zh", "fr"} }, "languages[1]", `got "fr"`},
		{"bad channel language", func(c *Config) { c.Channels[0].Languages = []string{"de"} }, "channels[0].languages[0]", `got "de"`},
		{"bad template", func(c *Config) {
			c.Channels[0].Templates = []TemplateConfig{{Kind: alarm.EventFiring, Body: LangText{EN: "{{.Alarm.Nope}}"}}}
		}, "channels[0].templates[0].body.en", "Nope"},
		{"bad template kind", func(c *Config) { c.Channels[0].Templates = []TemplateConfig{{Kind: "paged"}} }, "channels[0].templates[0].kind", `got "paged"`},
		{"route to unknown channel", func(c *Config) { c.Routes[0].Channels = []string{"hook", "sms"} }, "routes[0].channels[1]", `no channel named "sms"`},
		{"route without channels", func(c *Config) { c.Routes[0].Channels = nil }, "routes[0].channels", "required"},
		{"route bad severity", func(c *Config) { c.Routes[0].MinSeverity = "high" }, "routes[0].min_severity", `got "high"`},
		{"route bad kind", func(c *Config) { c.Routes[0].Kinds = []alarm.EventKind{"paged"} }, "routes[0].kinds[0]", `got "paged"`},
		{"route bad level", func(c *Config) { c.Routes[0].Levels = []int{-1} }, "routes[0].levels[0]", "negative"},
		{"retry max below min", func(c *Config) {
			c.Retry = RetryConfig{Min: facility.Duration(time.Minute), Max: facility.Duration(time.Second)}
		}, "retry.max", "below"},
		{"bad external url", func(c *Config) { c.ExternalURL = "gw.example.org" }, "external_url", "http(s) URL"},
		{"bad topic prefix", func(c *Config) {
			c.Channels[0] = ChannelConfig{Name: "p", Type: TypeMQTT, MQTT: MQTTConfig{TopicPrefix: "sw/#"}}
		}, "channels[0].mqtt.topic_prefix", "wildcards"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.mutate(&c)
			c.Defaults()
			errs := c.Validate()
			if tc.key == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", cfgerr.Err("notify", errs))
				}
				return
			}
			for _, e := range errs {
				if e.Key == tc.key && strings.Contains(e.Msg, tc.message) {
					if len(errs) > 1 {
						t.Logf("also: %v", cfgerr.Err("notify", errs))
					}
					return
				}
			}
			t.Fatalf("errors %v, want %s: ...%s...", cfgerr.Err("notify", errs), tc.key, tc.message)
		})
	}
}

func TestValidateNeverEchoesRobotURLs(t *testing.T) {
	c := Config{Channels: []ChannelConfig{{Name: "d", Type: TypeDingTalk, DingTalk: RobotConfig{URL: "oapi.dingtalk.com/robot/send?access_token=TOPSECRET"}}}}
	c.Defaults()
	if s := cfgerr.Err("notify", c.Validate()).Error(); !strings.Contains(s, "channels[0].dingtalk.url") || strings.Contains(s, "TOPSECRET") {
		t.Fatalf("error %q", s)
	}
}
