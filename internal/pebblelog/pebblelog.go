// Package pebblelog routes the logging of a Pebble database (the reading
// store, the notification outbox) to the gateway's slog logger: Pebble's
// chatter at debug level, its errors at error level, and its fatal errors
// at error level before it panics, as Pebble's Logger contract requires.
package pebblelog

import (
	"fmt"
	"log/slog"
)

// Logger implements pebble.Logger. Name prefixes every message ("store",
// "notify").
type Logger struct {
	Name string
	Log  *slog.Logger
}

// Infof implements pebble.Logger.
func (p Logger) Infof(format string, args ...any) {
	p.Log.Debug(p.Name + ": pebble: " + fmt.Sprintf(format, args...))
}

// Errorf implements pebble.Logger.
func (p Logger) Errorf(format string, args ...any) {
	p.Log.Error(p.Name + ": pebble: " + fmt.Sprintf(format, args...))
}

// Fatalf implements pebble.Logger: it logs, then panics.
func (p Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.Log.Error(p.Name + ": pebble fatal: " + msg)
	panic(p.Name + ": pebble: " + msg)
}
