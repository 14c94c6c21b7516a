package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/internal/facility"
)

// benchConfig has 100 devices in 10 zones and 200 rules: the built-in set
// plus generated thresholds, time windows and hysteresis over temperature,
// door and smoke readings, with match expressions on zone tags.
func benchConfig() Config {
	cfg := Config{Facility: "bench", Location: shanghai}
	for z := range 10 {
		tag := []string{"dormitory", "kitchen", "secure-ward", "corridor", "office"}[z%5]
		cfg.Zones = append(cfg.Zones, facility.Zone{ID: fmt.Sprintf("zone-%d", z), Name: fmt.Sprintf("Zone %d", z), Tags: []string{tag}})
	}
	for d := range 100 {
		kind := []reading.Kind{reading.KindTemperature, reading.KindTemperature, reading.KindDoor, reading.KindSmoke}[d%4]
		cfg.Devices = append(cfg.Devices, facility.Device{ID: fmt.Sprintf("dev-%03d", d), Kind: kind, Zone: fmt.Sprintf("zone-%d", d%10), OfflineAfter: time.Hour})
	}
	cfg.Rules = Builtin()
	for i := 0; len(cfg.Rules) < 200; i++ {
		tag := []string{"dormitory", "kitchen", "secure-ward", "corridor", "office"}[i%5]
		r := RuleConfig{ID: fmt.Sprintf("gen-%d", i), Match: fmt.Sprintf("%q in tags", tag), Severity: "warning", Title: title("gen {{.Value}}")}
		switch i % 3 {
		case 0:
			r.Kinds, r.When, r.Clear, r.For = []string{"temperature"}, fmt.Sprintf("value > %d", 30+i%10), fmt.Sprintf("value < %d", 28+i%10), facility.Duration(time.Minute)
		case 1:
			r.Kinds, r.When, r.Active = []string{"door"}, "value", ActiveConfig{Between: fmt.Sprintf("%02d:00-%02d:00", i%24, (i+3)%24)}
		case 2:
			r.When = fmt.Sprintf("has_battery && battery < %d || num > %d", 10+i%5, 60+i%10)
		}
		cfg.Rules = append(cfg.Rules, r)
	}
	return cfg
}

// BenchmarkObserve is the rules' cost per reading with 200 rules: the
// steady case, where readings mostly change no alarm.
func BenchmarkObserve(b *testing.B) {
	cfg := benchConfig()
	c, err := NewCore(cfg, t0)
	if err != nil {
		b.Fatal(err)
	}
	rs := make([]reading.Reading, 1000)
	for i := range rs {
		d := cfg.Devices[i%len(cfg.Devices)]
		v := reading.Number(20 + float64(i%50)/10)
		switch d.Kind {
		case reading.KindDoor, reading.KindSmoke:
			v = reading.Bool(false)
		}
		rs[i] = reading.Reading{Device: d.ID, Kind: d.Kind, Zone: d.Zone, Value: v, Battery: reading.Ptr(80)}
	}
	b.ReportAllocs()
	b.ResetTimer()
	now := t0
	for i := range b.N {
		r := &rs[i%len(rs)]
		now = now.Add(time.Millisecond)
		r.Time, r.Received = now, now
		c.Observe(*r, now)
		if i%1000 == 999 {
			c.Tick(now)
			c.Drain()
		}
	}
	b.ReportMetric(float64(len(cfg.Rules)), "rules")
}
