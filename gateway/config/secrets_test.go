package config

import (
	"slices"
	"testing"

	"github.com/shelterwatch/shelterwatch/rules/notify"
)

func TestSecretFiles(t *testing.T) {
	c := &Config{
		Broker: Broker{External: External{PasswordFile: "/etc/sw/mqtt.pw", KeyFile: "/etc/sw/client.key"},
			Embedded: Embedded{TLSKeyFile: "/etc/sw/broker.key"}},
		HTTP:   HTTP{TLSKeyFile: "/etc/sw/server.key"},
		Influx: []InfluxTarget{{ID: "a", PasswordFile: "/etc/sw/influx.pw"}, {ID: "b", TokenFile: "/etc/sw/influx.token"}},
		Video:  Video{ICEServers: []ICEServer{{SecretFile: "/etc/sw/turn.secret"}, {CredentialFile: "/etc/sw/turn.cred"}}},
		Notify: notify.Config{Channels: []notify.ChannelConfig{
			{Name: "hook", Type: notify.TypeWebhook, Webhook: notify.WebhookConfig{SecretFile: "/etc/sw/hook.secret"}},
			{Name: "mail", Type: notify.TypeEmail, Email: notify.EmailConfig{PasswordFile: "/etc/sw/mail.pw"}},
		}},
	}
	got := c.SecretFiles()
	for _, want := range []string{"/etc/sw/mqtt.pw", "/etc/sw/influx.pw", "/etc/sw/influx.token", "/etc/sw/turn.secret",
		"/etc/sw/turn.cred", "/etc/sw/hook.secret", "/etc/sw/mail.pw", "/etc/sw/client.key", "/etc/sw/broker.key", "/etc/sw/server.key"} {
		if !slices.Contains(got, want) {
			t.Errorf("SecretFiles() = %v: %s missing", got, want)
		}
	}
	if len(got) != 10 {
		t.Errorf("SecretFiles() = %v, want exactly the 10 secret files", got)
	}
}
