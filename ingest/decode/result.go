package decode

import (
	"cmp"
	"slices"
	"time"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// builder collects what a decoder extracts from one message and turns it
// into a checked Result. It is a value on the decoder's stack; nothing is
// shared between messages.
type builder struct {
	format  string
	obs     []Observation
	time    time.Time
	battery *float64
	lq      *float64
	// attrErr is the first problem with the Battery or LinkQuality
	// attribute. See result for why it does not always reject the message.
	attrErr error
	// rejected are values dropped before they became observations (a
	// field of the wrong type, an unreadable timestamp).
	rejected []error
}

func newBuilder(format string) builder {
	return builder{format: format}
}

func (b *builder) add(k reading.Kind, v reading.Value) {
	if b.obs == nil {
		b.obs = make([]Observation, 0, 4)
	}
	b.obs = append(b.obs, Observation{Kind: k, Value: v})
}

func (b *builder) number(k reading.Kind, v float64) { b.add(k, reading.Number(v)) }
func (b *builder) flag(k reading.Kind, v bool)      { b.add(k, reading.Bool(v)) }

// numberOn and flagOn add an observation of one channel (sub-sensor).
func (b *builder) numberOn(ch string, k reading.Kind, v float64) {
	b.number(k, v)
	b.obs[len(b.obs)-1].Channel = ch
}

func (b *builder) flagOn(ch string, k reading.Kind, v bool) {
	b.flag(k, v)
	b.obs[len(b.obs)-1].Channel = ch
}

// fault records that the sensor on channel ch answered without a value.
func (b *builder) fault(ch string) { b.flagOn(ch, reading.KindSensorFault, true) }

// reject drops one value of the message (see the package doc's policy);
// a nil err is ignored so that callers can pass a field helper's error.
func (b *builder) reject(err error) {
	if err != nil {
		b.rejected = append(b.rejected, err)
	}
}

// setTime sets the device timestamp, or drops it when it cannot be read
// (the receive time is used then).
func (b *builder) setTime(t time.Time, err error) {
	if err != nil {
		b.reject(err)
		return
	}
	b.time = t
}

// attr records a problem with an attribute (see result).
func (b *builder) attr(err error) {
	if b.attrErr == nil {
		b.attrErr = err
	}
}

// setBattery sets the Battery attribute (percent) if it is plausible.
func (b *builder) setBattery(pct float64) {
	if err := checkAttribute(b.format, "battery", pct, 0, 100); err != nil {
		b.attr(err)
		return
	}
	b.battery = &pct
}

// setLinkQuality sets the LinkQuality attribute (0–255) if it is plausible.
func (b *builder) setLinkQuality(lq float64) {
	if err := checkAttribute(b.format, "link quality", lq, linkQualityMin, linkQualityMax); err != nil {
		b.attr(err)
		return
	}
	b.lq = &lq
}

// result checks every observation and assembles the Result.
//
// Rules every format shares:
//   - An implausible observation, or a value dropped by reject, is
//     reported in Result.Rejected, and the rest of the message is kept: a smoke=true must
//     get through even when the same message carries a broken humidity
//     value. Only when nothing valid remains is the message rejected.
//   - A bad Battery or LinkQuality attribute never costs a reading. When the
//     message carries readings the attribute is dropped (a Tuya smoke
//     detector reporting 200 % battery must still deliver smoke=true); when
//     it carries nothing else the message is rejected, so the metric shows
//     the problem and nothing is lost.
//   - KindBattery is an observation only when the message holds nothing else
//     (reading.KindBattery); otherwise the level travels as the Battery
//     attribute of the other readings.
//   - A message that decodes to no observation is a heartbeat.
//   - Observations are sorted by kind, channel, then value, so results are
//     deterministic whatever order the payload listed them in.
func (b *builder) result() (Result, error) {
	rejected := b.rejected
	b.obs = slices.DeleteFunc(b.obs, func(o Observation) bool {
		if err := checkObservation(b.format, o); err != nil {
			rejected = append(rejected, err)
			return true
		}
		return false
	})
	if len(rejected) > 0 && len(b.obs) == 0 {
		return Result{}, rejected[0]
	}
	hasOther := false
	for _, o := range b.obs {
		if o.Kind != reading.KindBattery {
			hasOther = true
			break
		}
	}
	obs := b.obs
	if hasOther {
		obs = slices.DeleteFunc(obs, func(o Observation) bool {
			if o.Kind != reading.KindBattery {
				return false
			}
			if b.battery == nil {
				v := o.Value.Num
				b.battery = &v
			}
			return true
		})
	} else if len(obs) == 0 {
		if b.attrErr != nil {
			return Result{}, b.attrErr
		}
		if b.battery != nil {
			obs = append(obs, Observation{Kind: reading.KindBattery, Value: reading.Number(*b.battery)})
		}
	} else if b.battery == nil {
		// Only battery readings (an ESPHome or Homie battery sensor): the
		// attribute matches, as it does when the level came as an attribute.
		v := obs[0].Value.Num
		b.battery = &v
	}
	if len(obs) == 0 {
		obs = nil
	}
	slices.SortFunc(obs, compareObservations)
	return Result{
		Observations: obs,
		Time:         b.time,
		Battery:      b.battery,
		LinkQuality:  b.lq,
		Heartbeat:    len(obs) == 0,
		Rejected:     rejected,
	}, nil
}

func compareObservations(a, b Observation) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Channel, b.Channel); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Value.Type, b.Value.Type); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Value.Num, b.Value.Num); c != 0 {
		return c
	}
	if a.Value.Bool != b.Value.Bool {
		if !a.Value.Bool {
			return -1
		}
		return 1
	}
	return cmp.Compare(a.Value.State, b.Value.State)
}

// heartbeat is the Result of a message that only proves the device alive.
func heartbeat() (Result, error) {
	return Result{Heartbeat: true}, nil
}

// ignored is the Result of a command published to the device.
func ignored() (Result, error) {
	return Result{Ignored: true}, nil
}

// availability is the Result of an availability/LWT message.
func availability(online bool) (Result, error) {
	return Result{Observations: []Observation{{Kind: reading.KindAvailability, Value: reading.Bool(online)}}}, nil
}

// availabilityWord decodes a plain-text availability message (an LWT or a
// status topic) whose firmware uses the words on and off.
func availabilityWord(format, what, s, on, off string) (Result, error) {
	switch s {
	case on:
		return availability(true)
	case off:
		return availability(false)
	}
	return Result{}, Errorf(ReasonMalformed, "%s: %s %q: want %s or %s", format, what, s, on, off)
}
