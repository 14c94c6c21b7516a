package discover

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Message is one MQTT message as a discovery client received it.
type Message struct {
	Topic   string
	Payload []byte
	// Retained is the flag the broker delivered the message with: true
	// for what was announced before the client subscribed.
	Retained bool
}

// Filters returns the MQTT topic filters that carry the announcements
// this package reads.
func Filters() []string {
	return []string{"+/bridge/devices", "homeassistant/#", "tasmota/discovery/#", "homie/5/+/$description"}
}

// Via names the kind of announcement a proposal came from.
type Via string

// The announcements read, in the order their proposals win when two
// describe the same device (the Zigbee2MQTT bridge's own list knows more
// than the Home Assistant discovery it derives from it).
const (
	ViaZigbee2MQTT   Via = "Zigbee2MQTT bridge/devices"
	ViaTasmota       Via = "Tasmota discovery"
	ViaHomie         Via = "Homie 5 $description"
	ViaHomeAssistant Via = "Home Assistant discovery"
)

var viaOrder = []Via{ViaZigbee2MQTT, ViaTasmota, ViaHomie, ViaHomeAssistant}

// Payload formats, as gateway/config names them.
const (
	formatZigbee2MQTT = "zigbee2mqtt"
	formatTasmota     = "tasmota"
	formatESPHome     = "esphome"
	formatHomie       = "homie"
)

// Thing is one tracked sub-sensor of a device.
type Thing struct {
	// Channel is the firmware's name for it ("DS18B20-2", "Switch1", an
	// ESPHome object id, a Homie "node/property"); empty for a device
	// whose one state carries everything (Zigbee2MQTT).
	Channel string
	// Name is its display name from the firmware, if it has one.
	Name string
	// Kinds are what it reports, most important first.
	Kinds []reading.Kind
	// Source is the topic that announced it, when that is not the
	// device's (Home Assistant announces each entity on its own topic).
	Source string
	// Notes are what the installer should check about it.
	Notes []string
}

// Proposal is one proposed gateway device entry.
type Proposal struct {
	// ID is the suggested device id: lower-case letters, digits, '-' and
	// '_', unique among the proposals, the configured devices and
	// Options.Reserved. For a configured device, its id.
	ID      string
	Name    string
	Kind    reading.Kind
	Format  string
	Topic   string
	Channel string
	// Via and Source say where it came from: the kind of announcement
	// and its topic.
	Via    Via
	Source string
	// Ident is the firmware's own identifier of the device (IEEE
	// address, MAC, unique id), Model and Vendor what it says it is;
	// each may be empty.
	Ident, Model, Vendor string
	// Reports are the kinds this entry reports, most important first.
	Reports []reading.Kind
	// Notes are things the installer should check ("door guessed for a
	// switch input").
	Notes []string
	// OwnLogin is true for a device that logs in to the broker itself
	// (Wi-Fi firmware) rather than through a bridge (Zigbee2MQTT).
	OwnLogin bool
	// Configured is the id of the configured device that already covers
	// this entry (same format and topic, and the same channel or a
	// device without one); empty for a new entry.
	Configured string
}

// Skipped is an announced device that could not become an entry.
type Skipped struct {
	Via    Via
	Source string
	Name   string
	Reason string
}

// Result is what Propose makes of the announcements.
type Result struct {
	// Proposals are sorted by format, topic and channel.
	Proposals []Proposal
	Skipped   []Skipped
}

// New returns the proposals no configured device covers yet.
func (r Result) New() []Proposal {
	var out []Proposal
	for _, p := range r.Proposals {
		if p.Configured == "" {
			out = append(out, p)
		}
	}
	return out
}

// Configured is a device entry the gateway's config already has.
type Configured struct {
	ID, Format, Topic, Channel string
}

// Options are what Propose needs to know about the config.
type Options struct {
	Configured []Configured
	// Reserved are other ids a new device must not take (the embedded
	// broker's user names: a device id is its MQTT user name).
	Reserved []string
}

// Collector gathers announcements; see the package doc.
type Collector struct {
	bridges map[string]z2mBridge    // Zigbee2MQTT base topic → its device list
	ha      map[string][]haEntity   // discovery topic → its entities
	tasmota map[string]*tasmotaNode // MAC → its config and sensors
	homie   map[string]*homieDevice // device id → its description
}

// NewCollector returns an empty Collector.
func NewCollector() *Collector {
	return &Collector{
		bridges: map[string]z2mBridge{},
		ha:      map[string][]haEntity{},
		tasmota: map[string]*tasmotaNode{},
		homie:   map[string]*homieDevice{},
	}
}

// ErrNotDiscovery is returned by Add for a topic that carries no
// announcement this package reads.
var ErrNotDiscovery = errors.New("discover: not a discovery topic")

// Relevant reports whether topic carries an announcement this package
// reads.
func Relevant(topic string) bool { return kindOf(topic) != topicNone }

type topicKind uint8

const (
	topicNone topicKind = iota
	topicZ2M
	topicHA
	topicTasmota
	topicHomie
)

func kindOf(topic string) topicKind {
	if !utf8.ValidString(topic) {
		return topicNone
	}
	lv := strings.Split(topic, "/")
	switch {
	case len(lv) == 3 && lv[0] != "" && lv[1] == "bridge" && lv[2] == "devices":
		return topicZ2M
	case (len(lv) == 4 || len(lv) == 5) && lv[0] == "homeassistant" && lv[len(lv)-1] == "config" && !slices.Contains(lv[1:len(lv)-1], ""):
		return topicHA
	case len(lv) == 4 && lv[0] == "tasmota" && lv[1] == "discovery" && lv[2] != "" && (lv[3] == "config" || lv[3] == "sensors"):
		return topicTasmota
	case len(lv) == 4 && lv[0] == "homie" && lv[1] == "5" && lv[2] != "" && lv[3] == "$description":
		return topicHomie
	}
	return topicNone
}

// Add takes one message. A message on a topic it does not read returns
// ErrNotDiscovery; a payload it cannot read returns an error naming the
// topic, and what that topic announced before is forgotten. An empty
// payload forgets what the topic announced.
func (c *Collector) Add(m Message) error {
	lv := strings.Split(m.Topic, "/")
	switch kindOf(m.Topic) {
	case topicZ2M:
		return c.addZ2M(lv[0], m)
	case topicHA:
		return c.addHA(m)
	case topicTasmota:
		return c.addTasmota(lv[2], lv[3], m)
	case topicHomie:
		return c.addHomie(lv[2], m)
	}
	return fmt.Errorf("%w: %q", ErrNotDiscovery, m.Topic)
}

// candidate is one announced device before it is split into entries.
type candidate struct {
	via            Via
	source         string
	name           string // display name
	idBase         string // what the id is derived from
	ident          string
	model, vendor  string
	format, topic  string
	things         []Thing
	notes          []string
	ownLogin       bool
	wholeDevice    bool   // one entry whatever it reports (Zigbee2MQTT)
	live           bool   // announced by a message that was not retained
	skipReason     string // set when the device cannot become an entry
	untrackedNotes []string
}

// liveNote goes with a device announced by a message that was not
// retained: the next discovery will not hear it unless it announces again.
const liveNote = "announced, but not retained: on the embedded broker, the retain filters of the user that " +
	"publishes its announcement must cover the announcement's topic"

// Propose turns what was collected into proposals.
func (c *Collector) Propose(o Options) Result {
	var cands []candidate
	cands = append(cands, c.z2mCandidates()...)
	cands = append(cands, c.tasmotaCandidates()...)
	cands = append(cands, c.homieCandidates()...)
	cands = append(cands, c.haCandidates()...)

	var res Result
	// One candidate per format and topic: the earlier kind of
	// announcement wins (viaOrder), then the first in topic order.
	slices.SortStableFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(slices.Index(viaOrder, a.via), slices.Index(viaOrder, b.via)),
			cmp.Compare(a.source, b.source))
	})
	seen := map[string]bool{}
	var kept []candidate
	for _, cd := range cands {
		key := cd.format + "\x00" + cd.topic
		if cd.format != "" && seen[key] {
			continue
		}
		seen[key] = true
		if cd.skipReason != "" {
			res.Skipped = append(res.Skipped, Skipped{Via: cd.via, Source: cd.source, Name: cd.name, Reason: cd.skipReason})
			continue
		}
		if cd.live {
			cd.notes = append(cd.notes, liveNote)
		}
		kept = append(kept, cd)
	}

	ids := newIDSet(o)
	for _, cd := range kept {
		cd.things = slices.DeleteFunc(cd.things, func(th Thing) bool { return len(th.Kinds) == 0 })
		if len(cd.things) == 0 {
			reason := "reports nothing the gateway tracks"
			if len(cd.untrackedNotes) > 0 {
				reason += " (" + strings.Join(cd.untrackedNotes, "; ") + ")"
			}
			res.Skipped = append(res.Skipped, Skipped{Via: cd.via, Source: cd.source, Name: cd.name, Reason: reason})
			continue
		}
		if other, ok := topicTaken(o.Configured, cd.format, cd.topic); ok {
			res.Skipped = append(res.Skipped, Skipped{Via: cd.via, Source: cd.source, Name: cd.name,
				Reason: fmt.Sprintf("topic %q is already device %q of format %s", cd.topic, other.ID, other.Format)})
			continue
		}
		for _, p := range cd.entries() {
			if conf, ok := covered(o.Configured, p); ok {
				p.Configured, p.ID = conf.ID, conf.ID
			}
			res.Proposals = append(res.Proposals, p)
		}
	}
	slices.SortStableFunc(res.Proposals, func(a, b Proposal) int {
		return cmp.Or(cmp.Compare(a.Format, b.Format), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Channel, b.Channel))
	})
	// Ids are handed out in output order, so the same announcements give
	// the same ids.
	for i := range res.Proposals {
		if p := &res.Proposals[i]; p.Configured == "" {
			p.ID = ids.take(p.ID)
		}
	}
	slices.SortStableFunc(res.Skipped, func(a, b Skipped) int {
		return cmp.Or(cmp.Compare(slices.Index(viaOrder, a.Via), slices.Index(viaOrder, b.Via)), cmp.Compare(a.Source, b.Source), cmp.Compare(a.Name, b.Name))
	})
	res.Skipped = slices.Compact(res.Skipped) // one line per device, not per entity
	return res
}

// entries splits a candidate into its proposals; their ID is the wanted
// id, made unique later.
func (cd *candidate) entries() []Proposal {
	base := Proposal{Name: cd.name, Format: cd.format, Topic: cd.topic, Via: cd.via, Source: cd.source,
		Ident: cd.ident, Model: cd.model, Vendor: cd.vendor, OwnLogin: cd.ownLogin}
	if cd.wholeDevice || len(cd.things) == 1 {
		var kinds []reading.Kind
		p := base
		p.Notes = slices.Clone(cd.notes)
		for _, th := range cd.things {
			kinds = append(kinds, th.Kinds...)
			p.Notes = append(p.Notes, th.Notes...)
		}
		p.ID = slug(cd.idBase)
		p.Reports = sortKinds(kinds)
		p.Kind = p.Reports[0]
		return []Proposal{p}
	}
	out := make([]Proposal, 0, len(cd.things))
	for _, th := range cd.things {
		p := base
		p.Channel = th.Channel
		p.ID = channelID(cd.idBase, th.Channel)
		p.Name = channelName(cd.name, th)
		p.Reports = sortKinds(th.Kinds)
		p.Kind = p.Reports[0]
		p.Notes = append(slices.Clone(cd.notes), th.Notes...)
		p.Source = cmp.Or(th.Source, p.Source)
		out = append(out, p)
	}
	return out
}

// channelName names one channel of a board: the board's name and the
// channel's, or the channel's alone when it already starts like the
// board's ("Dorm 2F Smoke" of "Dorm 2F node").
func channelName(device string, th Thing) string {
	what := cmp.Or(th.Name, th.Channel)
	dw, ww := nameTokens(device), nameTokens(what)
	if device == "" || (len(dw) > 0 && len(ww) > 1 && dw[0] == ww[0]) {
		return what
	}
	return device + " " + what
}

// covered returns the configured device that already covers p.
func covered(conf []Configured, p Proposal) (Configured, bool) {
	for _, c := range conf {
		if c.Format == p.Format && c.Topic == p.Topic && (c.Channel == p.Channel || c.Channel == "" || p.Channel == "") {
			return c, true
		}
	}
	return Configured{}, false
}

// topicTaken returns a configured device of another format on topic.
func topicTaken(conf []Configured, format, topic string) (Configured, bool) {
	for _, c := range conf {
		if c.Topic == topic && c.Format != format {
			return c, true
		}
	}
	return Configured{}, false
}

// addThing merges th into the thing of its channel, adding it if new.
func addThing(things []Thing, th Thing) []Thing {
	for i := range things {
		if things[i].Channel == th.Channel {
			things[i].Kinds = sortKinds(append(things[i].Kinds, th.Kinds...))
			things[i].Name = cmp.Or(things[i].Name, th.Name)
			things[i].Source = cmp.Or(things[i].Source, th.Source)
			for _, n := range th.Notes {
				things[i].Notes = appendOnce(things[i].Notes, n)
			}
			return things
		}
	}
	th.Kinds = sortKinds(th.Kinds)
	return append(things, th)
}

// validTopic reports whether t can be a device's base topic in the
// gateway config: a topic name without wildcards, empty levels, a leading
// or trailing '/' or a leading '$'.
func validTopic(t string) bool {
	return t != "" && len(t) <= 65535 && utf8.ValidString(t) && !strings.ContainsAny(t, "+#\x00") &&
		!strings.HasPrefix(t, "/") && !strings.HasSuffix(t, "/") && !strings.Contains(t, "//") && !strings.HasPrefix(t, "$")
}

// validChannel reports whether ch can be a device's channel in the
// gateway config: printable, no white space or MQTT wildcards, at most
// 64 bytes.
func validChannel(ch string) bool {
	if ch == "" || len(ch) > maxIDLen || !utf8.ValidString(ch) {
		return false
	}
	for _, r := range ch {
		if r <= ' ' || r == 0x7f || r == '+' || r == '#' || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// clean makes a firmware string safe to show on one line: no control
// characters, at most 200 bytes.
func clean(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}
