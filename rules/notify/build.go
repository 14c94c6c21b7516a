package notify

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/cfgerr"
	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// Env is what New needs from the gateway besides the configuration.
type Env struct {
	// Dir holds the outbox database (e.g. <data dir>/notify).
	Dir string
	// Publisher carries the MQTT channels' zone states: the embedded
	// broker, or a PahoPublisher. Required when an mqtt channel is
	// configured.
	Publisher Publisher
	// Location is the facility's time zone for times in messages
	// (default UTC).
	Location *time.Location
	Logger   *slog.Logger
	// RootCAs, when set, replaces the system roots for HTTPS receivers
	// (email servers add their ca_file to the system roots).
	RootCAs *x509.CertPool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// New builds the configured channels and opens the outbox in env.Dir. It
// applies cfg's defaults and validates it first; the error then lists
// every problem (a cfgerr.List).
func New(cfg Config, env Env) (*Outbox, error) {
	cfg.Defaults()
	if errs := cfg.Validate(); len(errs) > 0 {
		return nil, cfgerr.Err("notify", errs)
	}
	chans, err := BuildChannels(cfg, env)
	if err != nil {
		return nil, err
	}
	settings := map[string]ChannelSettings{}
	for _, c := range cfg.Channels {
		settings[c.Name] = ChannelSettings{Concurrency: c.Concurrency, Timeout: c.Timeout.Std()}
	}
	return Open(env.Dir, Options{
		Channels: chans, Routes: cfg.Routes, Settings: settings,
		RetryMin: cfg.Retry.Min.Std(), RetryMax: cfg.Retry.Max.Std(),
		MaxAge: cfg.MaxAge.Std(), MaxAttempts: cfg.MaxAttempts, Concurrency: cfg.Concurrency,
		KeepFinished: cfg.KeepFinished.Std(), Logger: env.Logger, Now: env.Now,
	})
}

// BuildChannels builds the channels of a validated cfg (after Defaults),
// reading their secret files.
func BuildChannels(cfg Config, env Env) ([]Channel, error) {
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Location == nil {
		env.Location = time.UTC
	}
	poster := newHTTPPoster(env.RootCAs)
	limiter := ratelog.New(time.Minute)
	var out []Channel
	for i, cc := range cfg.Channels {
		key := fmt.Sprintf("channels[%d]", i)
		tmpl, errs := compileTemplates(cc.Templates)
		if len(errs) > 0 {
			return nil, fmt.Errorf("notify: %s.%s: %s", key, errs[0].Key, errs[0].Msg)
		}
		c := common{name: cc.Name, tmpl: tmpl, langs: parseLangs(cc.Languages), external: cfg.ExternalURL,
			loc: env.Location, http: poster, now: env.Now, log: env.Logger, limiter: limiter}
		secret := func(field, path string) (string, error) {
			if path == "" {
				return "", nil
			}
			s, err := readSecretFile(path)
			if err != nil {
				return "", fmt.Errorf("notify: %s.%s.%s: %w", key, cc.Type, field, err)
			}
			return s, nil
		}
		var ch Channel
		switch cc.Type {
		case TypeWebhook:
			s, err := secret("secret_file", cc.Webhook.SecretFile)
			if err != nil {
				return nil, err
			}
			ch = &webhookChannel{common: c, url: cc.Webhook.URL, secret: []byte(s)}
		case TypeAlertmanager:
			ch = &alertmanagerChannel{common: c, url: cc.Alertmanager.URL}
		case TypeEmail:
			pw, err := secret("password_file", cc.Email.PasswordFile)
			if err != nil {
				return nil, err
			}
			var roots *x509.CertPool
			if cc.Email.CAFile != "" {
				pem, err := os.ReadFile(cc.Email.CAFile)
				if err != nil {
					return nil, fmt.Errorf("notify: %s.email.ca_file: %w", key, err)
				}
				if roots, err = x509.SystemCertPool(); err != nil {
					roots = x509.NewCertPool()
				}
				if !roots.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("notify: %s.email.ca_file: no PEM certificate in %s", key, cc.Email.CAFile)
				}
			}
			ch = newEmail(c, cc.Email, pw, roots, cc.Timeout.Std())
		case TypeMQTT:
			if env.Publisher == nil {
				return nil, fmt.Errorf("notify: %s: an mqtt channel needs the MQTT broker, and none was given", key)
			}
			ch = newMQTT(c, env.Publisher, cc.MQTT.TopicPrefix)
		case TypeWeCom, TypeDingTalk, TypeFeishu:
			r := cc.robot()
			u := r.URL
			if r.URLFile != "" {
				var err error
				if u, err = secret("url_file", r.URLFile); err != nil {
					return nil, err
				}
			}
			s, err := secret("secret_file", r.SecretFile)
			if err != nil {
				return nil, err
			}
			switch cc.Type {
			case TypeWeCom:
				ch = &wecomChannel{common: c, url: u, cfg: *r}
			case TypeDingTalk:
				ch = &dingtalkChannel{common: c, url: u, secret: s, cfg: *r}
			default:
				ch = &feishuChannel{common: c, url: u, secret: s, cfg: *r}
			}
		default:
			return nil, errors.New("notify: " + key + ".type: unknown channel type " + cc.Type)
		}
		out = append(out, ch)
	}
	return out, nil
}
