package config

import (
	"reflect"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// Model returns the zone as the facility model has it.
func (z *Zone) Model() facility.Zone {
	return facility.Zone{ID: z.ID, Name: z.Name, NameZH: z.NameZH, Tags: z.Tags}
}

// Model returns the device as the facility model has it; its MQTT
// password stays in the config.
func (d *Device) Model() facility.Device {
	return facility.Device{ID: d.ID, Name: d.Name, Kind: d.Kind, Zone: d.Zone, OfflineAfter: d.OfflineAfter.Std(),
		Format: d.Format, Topic: d.Topic, Invert: d.Invert, Channel: d.Channel, Bridge: d.BridgeTopic(),
		StatusTopic: d.StatusTopic, OnlinePayload: d.OnlinePayload, OfflinePayload: d.OfflinePayload}
}

// Model returns the camera as the facility model has it; its address and
// credentials stay in the config.
func (c *Camera) Model() facility.Camera {
	return facility.Camera{ID: c.ID, Name: c.Name, NameZH: c.NameZH, Zone: c.Zone, OnDemand: c.OnDemand, DownAfter: c.DownAlarmAfter.Std()}
}

// ZoneModels returns every zone as the facility model has it.
func (c *Config) ZoneModels() []facility.Zone {
	out := make([]facility.Zone, len(c.Zones))
	for i := range c.Zones {
		out[i] = c.Zones[i].Model()
	}
	return out
}

// DeviceModels returns every configured device as the facility model has
// it.
func (c *Config) DeviceModels() []facility.Device {
	out := make([]facility.Device, len(c.Devices))
	for i := range c.Devices {
		out[i] = c.Devices[i].Model()
	}
	return out
}

// SecretFiles lists every file the config names that holds a secret (a
// password, token, webhook or TURN secret), in config order, for the
// start-up check that nobody else can read them.
func (c *Config) SecretFiles() []string {
	var out []string
	collectFiles(reflect.ValueOf(c).Elem(), secretFileKeys, &out)
	return out
}

// PublicFiles lists the other files the config names that a gateway
// needs to start and that are no secret (the rules file, certificates,
// CA certificates): a backup carries them beside the config. Sorted,
// each once.
func (c *Config) PublicFiles() []string {
	var out []string
	collectFiles(reflect.ValueOf(c).Elem(), publicFileKeys, &out)
	slices.Sort(out)
	return slices.Compact(out)
}

// publicFileKeys are the yaml keys that name a file holding no secret
// (the users file is the gateway's own data, backed up with it).
var publicFileKeys = []string{"rules_file", "tls_cert_file", "cert_file", "ca_file"}

// secretFileKeys are the yaml keys that name a file holding a secret.
// Private keys of TLS certificates are secrets too: whoever reads one can
// pose as the gateway to devices and browsers.
var secretFileKeys = []string{"password_file", "token_file", "secret_file", "credential_file", "key_file", "tls_key_file", "passphrase_file"}

// collectFiles appends the values of the string fields under v whose
// yaml key is one of keys.
func collectFiles(v reflect.Value, keys []string, out *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			collectFiles(v.Elem(), keys, out)
		}
	case reflect.Slice:
		for i := range v.Len() {
			collectFiles(v.Index(i), keys, out)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if f.Type.Kind() == reflect.String && slices.Contains(keys, name) {
				if p := v.Field(i).String(); p != "" {
					*out = append(*out, p)
				}
				continue
			}
			collectFiles(v.Field(i), keys, out)
		}
	}
}
