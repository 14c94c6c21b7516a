package broker

import "strings"

// filterCovers reports whether every topic matched by the requested filter
// is also matched by the allowed filter (MQTT wildcards + and #). A plain
// topic is a filter that matches only itself, so this serves publish checks
// (requested = the topic) and subscribe checks (requested = the filter).
func filterCovers(allowed, requested string) bool {
	a := strings.Split(allowed, "/")
	r := strings.Split(requested, "/")
	for i, al := range a {
		if al == "#" {
			return true
		}
		if i >= len(r) {
			return false
		}
		switch {
		case r[i] == "#":
			return false // requested is wider than allowed at this level
		case al == "+":
			// any single level, including a requested '+'
		case r[i] == "+" || r[i] != al:
			return false
		}
	}
	return len(a) == len(r)
}

// PrefixFilters turns topic prefixes into the filters a device may use:
// the prefix itself and everything below it.
func PrefixFilters(prefixes []string) []string {
	out := make([]string, 0, 2*len(prefixes))
	for _, p := range prefixes {
		out = append(out, p, p+"/#")
	}
	return out
}

// RetainFilters are the filters where a device of the payload format
// with the given base topic may retain: its availability (LWT) topic,
// which the firmware publishes retained and leaves as its will, so that a
// subscriber learns at once whether the device is up. A Homie device
// retains everything, as its convention requires (its attributes are
// discovered from retained messages). Other formats retain nothing else:
// the gateway reads every publish as it arrives, and a retained message
// is what a stolen login would leave behind for later subscribers.
func RetainFilters(format, base string) []string {
	switch format {
	case "native", "esphome":
		return []string{base + "/status"}
	case "zigbee2mqtt":
		return []string{base + "/availability"}
	case "tasmota":
		return []string{"tele/" + base + "/LWT"}
	case "shelly":
		return []string{base + "/online"}
	case "homie":
		return []string{base, base + "/#"}
	}
	return nil
}
