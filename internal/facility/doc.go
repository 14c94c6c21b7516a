// Package facility is the gateway's one model of the place it watches: the
// facility, its zones, its devices and cameras, the durations they are
// configured with, and whether a device is online. It sits below ingest,
// rules, video and gateway, so each of them uses these types instead of a
// copy of its own.
//
// The package holds plain values and pure functions: no goroutines, no
// locks, no I/O.
package facility
