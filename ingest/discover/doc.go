// Package discover proposes gateway device entries from what devices
// announce about themselves over MQTT, so that an installer reviews a list
// instead of typing topics by hand.
//
// It reads four kinds of announcement, each as its firmware publishes it:
//
//	<base>/bridge/devices                 Zigbee2MQTT's retained list of paired devices
//	homeassistant/<component>/[<node>/]<object>/config
//	                                      Home Assistant MQTT discovery, as ESPHome,
//	                                      Tasmota (SetOption19 1) and Zigbee2MQTT publish it
//	tasmota/discovery/<MAC>/config|sensors
//	                                      Tasmota's own discovery (9.2 and later)
//	homie/5/<device>/$description         Homie 5
//
// # Use
//
//	c := discover.NewCollector()
//	for each message on discover.Filters():
//		err := c.Add(discover.Message{Topic: t, Payload: p, Retained: r})   // a bad payload is an error; the rest stays
//	res := c.Propose(discover.Options{Configured: devices, Reserved: usernames})
//	res.Proposals   // one per tracked thing, new or already configured
//	res.Skipped     // announced devices that cannot become an entry, and why
//
// A Proposal is one gateway device entry: a suggested id (unique, derived
// from the device's own name), name, kind, format, topic and, for one
// sub-sensor of a multi-sensor board, channel, together with where it came
// from and what it reports. Its zone is never guessed: where a sensor hangs
// is for the installer to say. A device that reports one kind of thing is
// one entry without a channel. A board that reports several things (an
// ESPHome node with a smoke input and a door input, a Tasmota with two
// DS18B20, a Homie device with several properties) is one entry per thing,
// each with the firmware's name for it as the channel: a Tasmota sensor
// key ("DS18B20-2", "Switch2"), an ESPHome object id, a Homie
// "node/property". A Zigbee2MQTT device is always one entry: its one JSON
// state carries every value, and the gateway's decoder takes what it
// tracks from it.
//
// The kind is the most important thing the device reports, in this order:
// smoke, co, water_leak, panic, door, motion, temperature, humidity,
// pressure, tamper, battery_low, battery. A leak sensor that also reports
// its chip's temperature is a water_leak device.
//
// # Concurrency and backpressure
//
// The package does no I/O and starts no goroutines. A Collector is not
// safe for concurrent use: its caller feeds it from one goroutine (or
// under a lock). There is no flow to hold back: the caller decides how
// long to listen, and a Collector keeps only the latest message of each
// discovery topic, as a broker keeps retained messages, so its memory is
// bounded by the number of announcing topics, not by how long it listens.
// An empty payload removes what its topic announced, which is how Home
// Assistant and Tasmota discovery are cleared.
package discover
