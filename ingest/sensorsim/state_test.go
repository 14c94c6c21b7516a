package sensorsim

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// simulate steps a fresh state of d for span in steps of dt and returns every
// state along the way.
func simulate(d Device, seed uint64, span, dt time.Duration, edit func(*State)) []State {
	rng := rand.New(rand.NewPCG(seed, 1))
	st := NewState(d, testNow, rng)
	if edit != nil {
		edit(&st)
	}
	out := []State{st}
	for t := time.Duration(0); t < span; t += dt {
		st.Step(rng, dt)
		out = append(out, st)
	}
	return out
}

var (
	dormClimate    = Device{ID: "d", Format: "native", Base: "x", Kind: reading.KindTemperature, ZoneTags: []string{TagDormitory}}
	kitchenClimate = Device{ID: "k", Format: "native", Base: "y", Kind: reading.KindTemperature, ZoneTags: []string{TagKitchen}}
)

func TestStepStaysRealistic(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		states := simulate(dormClimate, seed, 72*time.Hour, 10*time.Second, nil)
		first, last := states[0], states[len(states)-1]
		for i, s := range states {
			if s.TempC < 17.5 || s.TempC > 24.5 {
				t.Fatalf("seed %d step %d: dormitory at %.2f °C, want about 18–24", seed, i, s.TempC)
			}
			if s.HumidityPct < 35 || s.HumidityPct > 60 {
				t.Fatalf("seed %d step %d: humidity %.1f %%, want 35–60", seed, i, s.HumidityPct)
			}
			if s.LinkQuality < 0 || s.LinkQuality > 255 {
				t.Fatalf("seed %d step %d: link quality %d", seed, i, s.LinkQuality)
			}
			if i > 0 && s.BatteryPct > states[i-1].BatteryPct {
				t.Fatalf("seed %d step %d: battery rose from %.3f to %.3f", seed, i, states[i-1].BatteryPct, s.BatteryPct)
			}
			if i > 0 && math.Abs(s.TempC-states[i-1].TempC) > 0.5 {
				t.Fatalf("seed %d step %d: temperature jumped %.2f → %.2f in 10 s", seed, i, states[i-1].TempC, s.TempC)
			}
		}
		if drop := first.BatteryPct - last.BatteryPct; drop < 10 || drop > 25 {
			t.Errorf("seed %d: battery fell %.1f %% in 3 days, want a slow visible drain (about 18 %%)", seed, drop)
		}
	}
}

func TestKitchenIsWarmerThanDormitory(t *testing.T) {
	mean := func(states []State) float64 {
		var sum float64
		for _, s := range states {
			sum += s.TempC
		}
		return sum / float64(len(states))
	}
	dorm := mean(simulate(dormClimate, 7, 24*time.Hour, time.Minute, nil))
	kitchen := mean(simulate(kitchenClimate, 7, 24*time.Hour, time.Minute, nil))
	if kitchen < dorm+2 {
		t.Errorf("kitchen mean %.1f °C, dormitory %.1f °C: want the kitchen clearly warmer", kitchen, dorm)
	}
}

func TestHeatingFailureCoolsTheRoomAndRecovers(t *testing.T) {
	failing := simulate(dormClimate, 3, 30*time.Minute, 10*time.Second, func(s *State) { s.heatingFailure = true })
	start, end := failing[0].TempC, failing[len(failing)-1].TempC
	if start-end < 4 {
		t.Fatalf("after 30 min without heating the dormitory went %.1f → %.1f °C, want a drop of several degrees", start, end)
	}
	rng := rand.New(rand.NewPCG(3, 2))
	st := failing[len(failing)-1]
	st.heatingFailure = false
	for range 3 * 60 * 6 { // 3 h of 10 s steps
		st.Step(rng, 10*time.Second)
	}
	if st.TempC < 18 {
		t.Errorf("3 h after the heating came back the dormitory is at %.1f °C, want it back near 18–24", st.TempC)
	}
}

func TestStepIsDeterministic(t *testing.T) {
	a := simulate(dormClimate, 42, time.Hour, 10*time.Second, nil)
	b := simulate(dormClimate, 42, time.Hour, 10*time.Second, nil)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("step %d differs with the same seed: %+v vs %+v", i, a[i], b[i])
		}
	}
}

func TestStepOnStateLiteral(t *testing.T) {
	st := testState()
	rng := rand.New(rand.NewPCG(1, 1))
	for range 360 {
		st.Step(rng, 10*time.Second)
	}
	if math.Abs(st.TempC-21.37) > 2 {
		t.Errorf("a State literal at 21.37 °C wandered to %.2f °C in an hour", st.TempC)
	}
}

func TestEventFor(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 30, h, m, 0, 0, testLoc) }
	wardDoor := Device{Kind: reading.KindDoor, ZoneTags: []string{TagSecureWard}}
	tests := []struct {
		name string
		dev  Device
		at   time.Time
		want event
	}{
		{"ward door at 03:00", wardDoor, at(3, 0), eventDoorOpenAtNight},
		{"ward door at 22:00", wardDoor, at(22, 0), eventDoorOpenAtNight},
		{"ward door at 05:59", wardDoor, at(5, 59), eventDoorOpenAtNight},
		{"ward door at 06:00", wardDoor, at(6, 0), 0},
		{"ward door at 14:00", wardDoor, at(14, 0), 0},
		{"dormitory door at 03:00", Device{Kind: reading.KindDoor, ZoneTags: []string{TagDormitory}}, at(3, 0), 0},
		{"dormitory temperature", Device{Kind: reading.KindTemperature, ZoneTags: []string{TagDormitory}}, at(14, 0), eventHeatingFailure},
		{"dormitory humidity", Device{Kind: reading.KindHumidity, ZoneTags: []string{TagDormitory}}, at(14, 0), 0},
		{"kitchen smoke", Device{Kind: reading.KindSmoke, ZoneTags: []string{TagKitchen}}, at(14, 0), eventKitchenSmoke},
		{"dormitory smoke", Device{Kind: reading.KindSmoke, ZoneTags: []string{TagDormitory}}, at(14, 0), 0},
		{"kitchen temperature", Device{Kind: reading.KindTemperature, ZoneTags: []string{TagKitchen}}, at(14, 0), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := eventFor(tt.dev, tt.at); got != tt.want {
				t.Errorf("eventFor = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSampleDevicesOfferEveryEvent(t *testing.T) {
	seen := map[event]bool{}
	for _, c := range candidates(SampleDevices(), time.Date(2026, 11, 30, 3, 0, 0, 0, testLoc)) {
		seen[c.ev] = true
	}
	for _, ev := range []event{eventDoorOpenAtNight, eventHeatingFailure, eventKitchenSmoke} {
		if !seen[ev] {
			t.Errorf("no sample device can play %v at night", ev)
		}
	}
}
