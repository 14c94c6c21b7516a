package discover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// Homie 5 (https://homieiot.github.io/specification/): a device publishes
// homie/5/<device-id>/$description, retained, a JSON document with its
// name and nodes, each node with its properties (datatype, unit, name,
// settable). A property's value is published on
// homie/5/<device-id>/<node-id>/<property-id>.

type homieDevice struct {
	topic    string
	desc     homieDescription
	retained bool
}

type homieDescription struct {
	Name  string               `json:"name"`
	Nodes map[string]homieNode `json:"nodes"`
}

type homieNode struct {
	Name       string                   `json:"name"`
	Properties map[string]homieProperty `json:"properties"`
}

type homieProperty struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Unit     string `json:"unit"`
	Settable bool   `json:"settable"`
}

func (c *Collector) addHomie(id string, m Message) error {
	delete(c.homie, id)
	if len(bytes.TrimSpace(m.Payload)) == 0 {
		return nil
	}
	var d homieDescription
	if err := json.Unmarshal(m.Payload, &d); err != nil {
		return fmt.Errorf("discover: Homie description on %q: %w", m.Topic, err)
	}
	c.homie[id] = &homieDevice{topic: m.Topic, desc: d, retained: m.Retained}
	return nil
}

// homieID reports whether id is a Homie topic id: lower-case letters,
// digits and '-', not at either end.
func homieID(id string) bool {
	if id == "" || id[0] == '-' || id[len(id)-1] == '-' {
		return false
	}
	for _, r := range id {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

func (c *Collector) homieCandidates() []candidate {
	var out []candidate
	for _, id := range slices.Sorted(maps.Keys(c.homie)) {
		d := c.homie[id]
		name := clean(d.desc.Name)
		cd := candidate{via: ViaHomie, source: d.topic, name: cmpOr(name, id), idBase: cmpOr(name, id), ident: id,
			format: formatHomie, topic: "homie/5/" + id, ownLogin: true, live: !d.retained}
		if slug(cd.idBase) == "" {
			cd.idBase = id
		}
		if !homieID(id) {
			cd.skipReason = fmt.Sprintf("device id %q is not a Homie id", id)
		}
		for _, nid := range slices.Sorted(maps.Keys(d.desc.Nodes)) {
			node := d.desc.Nodes[nid]
			for _, pid := range slices.Sorted(maps.Keys(node.Properties)) {
				p := node.Properties[pid]
				if p.Settable || !homieID(nid) || !homieID(pid) {
					continue // an actuator, or not a property the decoder can reach
				}
				k, ok := homieKind(nid, pid, node, p)
				if !ok {
					continue
				}
				ch := nid + "/" + pid
				if !validChannel(ch) {
					continue
				}
				th := Thing{Channel: ch, Name: clean(strings.TrimSpace(node.Name + " " + p.Name)), Kinds: []reading.Kind{k}}
				if k == reading.KindTemperature && p.Unit != "" && p.Unit != "°C" {
					th.Notes = append(th.Notes, fmt.Sprintf("it reports temperature in %s: the gateway stores °C", clean(p.Unit)))
				}
				cd.things = addThing(cd.things, th)
			}
		}
		out = append(out, cd)
	}
	return out
}

// homieKind guesses what a property reports: from its id, else its node's
// id, else their names, else its unit; the kind must fit its datatype.
func homieKind(nid, pid string, node homieNode, p homieProperty) (reading.Kind, bool) {
	fits := func(k reading.Kind) bool {
		switch strings.ToLower(p.Datatype) {
		case "boolean":
			return isBoolKind(k)
		case "integer", "float":
			return isNumberKind(k)
		}
		return false
	}
	for _, n := range []string{pid, nid, p.Name, node.Name} {
		if k, ok := inferKind(n); ok {
			return k, fits(k)
		}
	}
	switch p.Unit {
	case "°C", "°F":
		return reading.KindTemperature, fits(reading.KindTemperature)
	case "hPa", "mbar":
		return reading.KindPressure, fits(reading.KindPressure)
	}
	return "", false
}
