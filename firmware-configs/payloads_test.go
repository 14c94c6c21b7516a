package firmwareconfigs

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/shelterwatch/shelterwatch/gateway/config"
	"github.com/shelterwatch/shelterwatch/ingest/decode"
	"github.com/shelterwatch/shelterwatch/ingest/devstate"
	"github.com/shelterwatch/shelterwatch/ingest/pipeline"
	"github.com/shelterwatch/shelterwatch/ingest/reading"
	"github.com/shelterwatch/shelterwatch/ingest/store"
)

// t0 is when the first message of a scenario is received; the device
// clocks in the testdata agree with it (Tasmota's local 11:00 is 03:00 UTC).
var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// ignoredTopics are the gateway's (gateway/app): infrastructure chatter
// that shares the broker with device data.
var ignoredTopics = []string{"zigbee2mqtt/bridge", "homeassistant", "$SYS"}

// memStore is the pipeline's store for these tests: it keeps what was
// appended and dead-lettered. The store is not what is tested here.
type memStore struct {
	mu       sync.Mutex
	readings []reading.Reading
	dead     []store.DeadLetter
}

func (s *memStore) Append(_ context.Context, rs []reading.Reading) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings = append(s.readings, rs...)
	return nil
}

func (s *memStore) AddDeadLetter(dl store.DeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = append(s.dead, dl)
}

// since returns what was stored and dead-lettered after the marks.
func (s *memStore) since(nr, nd int) ([]reading.Reading, []store.DeadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.readings[nr:]), slices.Clone(s.dead[nd:])
}

func (s *memStore) marks() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.readings), len(s.dead)
}

// gateway is the ingest path of a gateway running the sample config: the
// pipeline wired as gateway/app wires it, the real decoders, device state.
type gateway struct {
	cfg   *config.Config
	p     *pipeline.Pipeline
	st    *memStore
	state *devstate.Tracker
	now   time.Time
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	cfg := loadSample(t)
	g := &gateway{cfg: cfg, st: &memStore{}, now: t0}
	devs := cfg.DeviceModels()
	g.state = devstate.New(devs, func() time.Time { return g.now })
	p, err := pipeline.New(pipeline.Options{
		Facility:     cfg.Facility.ID,
		Location:     cfg.Facility.Location,
		Devices:      devs,
		Decoders:     decode.All(),
		Store:        g.st,
		State:        g.state,
		MaxPayload:   int(cfg.Ingest.MaxPayloadBytes),
		MaxClockSkew: cfg.Ingest.MaxClockSkew.Std(),
		Ignore:       ignoredTopics,
	})
	if err != nil {
		t.Fatalf("pipeline for %s: %v", sampleConfig, err)
	}
	g.p = p
	return g
}

// handle delivers one message received at `at` and returns what it stored
// and dead-lettered.
func (g *gateway) handle(t *testing.T, topic, payload string, at time.Time) ([]reading.Reading, []store.DeadLetter) {
	t.Helper()
	g.now = at
	nr, nd := g.st.marks()
	msg := pipeline.Message{Topic: topic, Payload: []byte(payload), Received: at, Client: "contract-test"}
	if err := g.p.Handle(context.Background(), msg); err != nil {
		t.Fatalf("Handle(%s) = %v: the broker would not acknowledge it", topic, err)
	}
	return g.st.since(nr, nd)
}

// boardOf returns the ids of the devices a message on topic is routed to:
// those owning the longest of their format's prefixes that covers topic
// (several when they are channels of one board).
func boardOf(cfg *config.Config, topic string) []string {
	decs := decode.All()
	best, ids := "", []string(nil)
	for _, d := range cfg.Devices {
		for _, p := range decs[d.Format].Prefixes(d.Topic) {
			if topic != p && !strings.HasPrefix(topic, p+"/") {
				continue
			}
			switch {
			case len(p) > len(best):
				best, ids = p, []string{d.ID}
			case p == best:
				ids = append(ids, d.ID)
			}
		}
	}
	return ids
}

// scenario is one testdata/payloads file: the messages a firmware config
// makes its device publish, in order, and what the gateway must store.
type scenario struct {
	// Firmware is the config (or doc) of this folder the payloads belong to.
	Firmware string    `yaml:"firmware"`
	Messages []message `yaml:"messages"`
}

type message struct {
	Name string `yaml:"name"`
	// Source says where the payload's form is documented.
	Source  string `yaml:"source"`
	Topic   string `yaml:"topic"`
	Payload string `yaml:"payload"`
	// Want are the readings stored, exactly; Every is one reading for each
	// device the topic is routed to (a board's availability).
	Want  *[]want `yaml:"want"`
	Every *want   `yaml:"every"`
	// Online and Offline are devices whose live state (the console's
	// Facility page, GET /api/v1/devices) must say so after the message.
	Online  []string `yaml:"online"`
	Offline []string `yaml:"offline"`
}

// want is one expected reading. Adapting to a renamed field of
// reading.Reading means changing describe and matches only.
type want struct {
	Device  string `yaml:"device"`
	Kind    string `yaml:"kind"`
	Channel string `yaml:"channel"`
	// Value is a bool, a number or a state string.
	Value any `yaml:"value"`
	// Battery, when set, is the battery level (%) the reading must carry.
	Battery *float64 `yaml:"battery"`
}

func (w want) String() string {
	s := fmt.Sprintf("%s %s ch=%q %v", w.Device, w.Kind, w.Channel, w.Value)
	if w.Battery != nil {
		s += fmt.Sprintf(" battery=%g", *w.Battery)
	}
	return s
}

// describe formats a stored reading like want.String.
func describe(r reading.Reading) string {
	s := fmt.Sprintf("%s %s ch=%q %v", r.Device, r.Kind, r.Channel, r.Value.Any())
	if r.Battery != nil {
		s += fmt.Sprintf(" battery=%g", *r.Battery)
	}
	return s
}

// describeAll formats stored readings for failure messages.
func describeAll(rs []reading.Reading) string {
	if len(rs) == 0 {
		return "nothing"
	}
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = describe(r)
	}
	return strings.Join(out, "; ")
}

// matches reports whether r is the reading w describes.
func (w want) matches(r reading.Reading) bool {
	if r.Device != w.Device || string(r.Kind) != w.Kind || r.Channel != w.Channel || !sameValue(w.Value, r.Value) {
		return false
	}
	return w.Battery == nil || (r.Battery != nil && math.Abs(*r.Battery-*w.Battery) < 1e-9)
}

func sameValue(w any, v reading.Value) bool {
	switch w := w.(type) {
	case bool:
		return v.Type == reading.TypeBool && v.Bool == w
	case int:
		return v.Type == reading.TypeNumber && math.Abs(v.Num-float64(w)) < 1e-9
	case float64:
		return v.Type == reading.TypeNumber && math.Abs(v.Num-w) < 1e-9
	case string:
		return v.Type == reading.TypeState && v.State == w
	}
	return false
}

func loadScenario(t *testing.T, file string) scenario {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, file))))
	dec.KnownFields(true)
	var sc scenario
	if err := dec.Decode(&sc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if _, err := os.Stat(sc.Firmware); err != nil {
		t.Fatalf("%s: firmware %q: %v", file, sc.Firmware, err)
	}
	if len(sc.Messages) == 0 {
		t.Fatalf("%s: no messages", file)
	}
	return sc
}

// TestFirmwarePayloads feeds the payloads each firmware config makes its
// device publish (testdata/payloads, each citing where its form is
// documented) through the gateway's ingest pipeline, configured by
// gateway-config.yaml, and checks the stored readings, that nothing is
// dead-lettered, and the devices' live state. A failure here is what an
// installer would see: a sensor that reads as the wrong kind, on the wrong
// device, or not at all.
func TestFirmwarePayloads(t *testing.T) {
	cfg := loadSample(t)
	exercised := map[string]bool{}
	for _, file := range files(t, filepath.Join("testdata", "payloads", "*.yaml")) {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			sc := loadScenario(t, file)
			g := newGateway(t)
			for i, m := range sc.Messages {
				where := fmt.Sprintf("%s: message %d %q (%s on %s)", file, i+1, m.Name, m.Payload, m.Topic)
				if strings.TrimSpace(m.Source) == "" {
					t.Errorf("%s: no source: say where this payload's form is documented", where)
				}
				if (m.Want == nil) == (m.Every == nil) {
					t.Fatalf("%s: give exactly one of want and every", where)
				}
				var wants []want
				if m.Want != nil {
					wants = *m.Want
				} else {
					board := boardOf(cfg, m.Topic)
					if len(board) == 0 {
						t.Fatalf("%s: no configured device publishes on %s", where, m.Topic)
					}
					for _, id := range board {
						w := *m.Every
						w.Device = id
						wants = append(wants, w)
					}
				}
				got, dead := g.handle(t, m.Topic, m.Payload, t0.Add(time.Duration(i)*time.Second))
				for _, dl := range dead {
					t.Errorf("%s: dead-lettered (%s): %s", where, dl.Reason, dl.Error)
				}
				checkReadings(t, where, wants, got)
				for _, w := range wants {
					exercised[w.Device] = true
				}
				for _, id := range m.Online {
					if s, ok := g.state.Get(id); !ok || !s.Online {
						t.Errorf("%s: device %s should be online now, state %+v", where, id, s)
					}
				}
				for _, id := range m.Offline {
					if s, ok := g.state.Get(id); !ok || s.Online {
						t.Errorf("%s: device %s should be offline now, state %+v", where, id, s)
					}
				}
			}
		})
	}
	t.Run("every configured device is exercised", func(t *testing.T) {
		for _, d := range cfg.Devices {
			if !exercised[d.ID] {
				t.Errorf("device %s (%s on %s) gets no reading in testdata/payloads: add the payloads its firmware publishes", d.ID, d.Format, d.Topic)
			}
		}
	})
}

// checkReadings compares stored readings with the expected ones, in any
// order, each used once.
func checkReadings(t *testing.T, where string, wants []want, got []reading.Reading) {
	t.Helper()
	used := make([]bool, len(got))
	var missing []string
	for _, w := range wants {
		found := false
		for i, r := range got {
			if !used[i] && w.matches(r) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing = append(missing, w.String())
		}
	}
	var extra []string
	for i, r := range got {
		if !used[i] {
			extra = append(extra, describe(r))
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s:\n  missing: %s\n  unexpected: %s\n  stored: %s", where,
			strings.Join(missing, "; "), strings.Join(extra, "; "), describeAll(got))
	}
}
