package sensorsim

import (
	"math"
	"math/rand/v2"
	"time"
)

// State is the simulated physical state of one device. The payload builders
// read only the exported fields, so tests and benchmark tools may build a
// State literal; NewState and Step also keep the hidden random-walk targets.
type State struct {
	TempC       float64 // air temperature, °C
	HumidityPct float64 // relative humidity, %
	PressureHPa float64 // barometric pressure, hPa
	BatteryPct  float64 // battery charge, %; falls slowly
	LinkQuality int     // radio link quality, 0–255 (Zigbee LQI scale)
	// Active is the device's boolean: door open, smoke detected, motion,
	// water detected, panic button pressed.
	Active bool
	// Boot is when the device started, for uptime fields (Tasmota STATE).
	Boot time.Time

	// TempC is pulled toward targetC, which wanders around the zone's
	// baseline baseC; during a heating failure it is pulled toward
	// heatingFailureC instead.
	baseC, targetC float64
	baseRH         float64
	baseLQ         float64
	heatingFailure bool
}

// Random-walk parameters. Each quantity is an Ornstein–Uhlenbeck process:
// it relaxes toward its target with time constant tau and diffuses with
// sigma per √minute, which gives slow, plausible drifts without trends.
const (
	outdoorC           = 8.0  // where a room heads when its heating fails, °C
	targetSpreadC      = 2.5  // how far a room's target wanders from its baseline, °C
	targetTau          = 360  // minutes
	targetSigma        = 0.08 // °C/√min
	tempTau            = 30   // minutes
	tempSigma          = 0.04 // °C/√min
	heatingFailureTau  = 60   // minutes: a dormitory loses ~0.2 °C/min at first
	rhTau              = 60   // minutes
	rhSigma            = 0.2  // %/√min
	pressureBaseHPa    = 1008.0
	pressureTau        = 720  // minutes
	pressureSigma      = 0.05 // hPa/√min
	lqTau              = 10   // minutes
	lqSigma            = 3.0  // LQI/√min
	batteryDrainPerH   = 0.25 // %/hour: visible over a day of demo
	minBatteryPct      = 1.0  // a dead battery still reports (as firmware does until it browns out)
	batteryLowPct      = 20.0 // below this, firmware sets battery_low
	minHumidityPct     = 35.0 // simulated indoor range, %
	maxHumidityPct     = 60.0 // simulated indoor range, %
	minTempC, maxTempC = -20.0, 50.0
)

// zoneBaseline returns the baseline temperature (°C) and humidity (%) of the
// device's zone: kitchens are warm and humid, dormitories 18–24 °C.
func zoneBaseline(d Device) (tempC, rh float64) {
	switch {
	case d.hasTag(TagKitchen):
		return 25.5, 52
	case d.hasTag(TagDormitory):
		return 21, 45
	}
	return 20, 45
}

// NewState returns a plausible starting state for d at now.
func NewState(d Device, now time.Time, rng *rand.Rand) State {
	baseC, baseRH := zoneBaseline(d)
	st := State{
		baseC:  baseC,
		baseRH: baseRH,
		baseLQ: 60 + rng.Float64()*140,
		Boot:   now,
	}
	st.targetC = clamp(baseC+rng.NormFloat64()*0.8, baseC-targetSpreadC, baseC+targetSpreadC)
	st.TempC = st.targetC + rng.NormFloat64()*0.3
	st.HumidityPct = clamp(baseRH+rng.NormFloat64()*4, minHumidityPct, maxHumidityPct)
	st.PressureHPa = clamp(pressureBaseHPa+rng.NormFloat64()*6, 980, 1035)
	st.BatteryPct = 60 + rng.Float64()*40
	st.LinkQuality = int(math.Round(st.baseLQ))
	return st
}

// Step advances the state by dt of simulated time.
func (s *State) Step(rng *rand.Rand, dt time.Duration) {
	m := dt.Minutes()
	if m <= 0 {
		return
	}
	if s.baseC == 0 && s.targetC == 0 { // a State literal: walk around where it is
		s.baseC, s.targetC = s.TempC, s.TempC
		s.baseRH = s.HumidityPct
		s.baseLQ = float64(s.LinkQuality)
	}
	s.targetC = clamp(ou(rng, s.targetC, s.baseC, targetTau, targetSigma, m), s.baseC-targetSpreadC, s.baseC+targetSpreadC)
	if s.heatingFailure {
		s.TempC = ou(rng, s.TempC, outdoorC, heatingFailureTau, tempSigma, m)
	} else {
		s.TempC = ou(rng, s.TempC, s.targetC, tempTau, tempSigma, m)
	}
	s.TempC = clamp(s.TempC, minTempC, maxTempC)
	s.HumidityPct = clamp(ou(rng, s.HumidityPct, s.baseRH, rhTau, rhSigma, m), minHumidityPct, maxHumidityPct)
	s.PressureHPa = clamp(ou(rng, s.PressureHPa, pressureBaseHPa, pressureTau, pressureSigma, m), 960, 1045)
	s.BatteryPct = math.Max(minBatteryPct, s.BatteryPct-batteryDrainPerH*m/60)
	s.LinkQuality = int(math.Round(clamp(ou(rng, float64(s.LinkQuality), s.baseLQ, lqTau, lqSigma, m), 0, 255)))
}

// ou advances an Ornstein–Uhlenbeck process x toward mean by m minutes.
func ou(rng *rand.Rand, x, mean, tau, sigma, m float64) float64 {
	return x + (mean-x)*(1-math.Exp(-m/tau)) + sigma*math.Sqrt(m)*rng.NormFloat64()
}

func clamp(x, lo, hi float64) float64 { return math.Min(hi, math.Max(lo, x)) }

// batteryLow is the firmware's low-battery flag.
func (s State) batteryLow() bool { return s.BatteryPct < batteryLowPct }
