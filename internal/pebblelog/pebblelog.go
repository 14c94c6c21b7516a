// Package pebblelog routes the logging of a Pebble database (the reading
// store, the notification outbox) to the gateway's slog logger: Pebble's
// chatter at debug level, its errors at error level (each kind of error at
// most once per ten seconds, with a count of those held back: a full disk
// makes Pebble retry a failing compaction many times a second), and its
// fatal errors at error level before it panics, as Pebble's Logger
// contract requires. The gateway keeps Pebble from its fatal paths (a
// failed WAL or MANIFEST write) by refusing readings before the disk is
// full: see ingest/store/space.go.
package pebblelog

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/ratelog"
)

// Logger implements pebble.Logger. Name prefixes every message ("store",
// "notify"). Build it with New; a literal logs every error.
type Logger struct {
	Name string
	Log  *slog.Logger

	limit *ratelog.Limiter
}

// New returns a Logger for the database called name.
func New(name string, log *slog.Logger) Logger {
	return Logger{Name: name, Log: log, limit: ratelog.New(10 * time.Second)}
}

// Infof implements pebble.Logger.
func (p Logger) Infof(format string, args ...any) {
	p.Log.Debug(p.Name + ": pebble: " + fmt.Sprintf(format, args...))
}

// Errorf implements pebble.Logger.
func (p Logger) Errorf(format string, args ...any) {
	if p.limit != nil {
		// One key per format: the same failure repeated differs only in
		// its arguments.
		n, ok := p.limit.AllowCount(format)
		if !ok {
			return
		}
		if n > 0 {
			p.Log.Error(p.Name+": pebble: "+fmt.Sprintf(format, args...), "suppressed_since_last", n)
			return
		}
	}
	p.Log.Error(p.Name + ": pebble: " + fmt.Sprintf(format, args...))
}

// Fatal is the panic value of Fatalf, which Recover turns into an error.
type Fatal struct{ Msg string }

func (f Fatal) Error() string { return f.Msg }

// Fatalf implements pebble.Logger: it logs, then panics with a Fatal, as
// Pebble requires (its code after Fatalf assumes it does not return).
func (p Logger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.limit == nil || p.limit.Allow("fatal:"+format) {
		p.Log.Error(p.Name + ": pebble fatal: " + msg)
	}
	panic(Fatal{Msg: p.Name + ": pebble: " + msg})
}

// Guard runs one write to a Pebble database (a batch commit, a Set) and
// returns a Fatal panic of it as an error (see Recover).
func Guard(write func() error) (err error) {
	defer Recover(&err)
	return write()
}

// Recover, deferred around a write to a Pebble database, turns a Fatal
// panic of that write (a WAL write that met a full disk) into *err, so
// the gateway keeps running and its alarms keep flowing; the database
// refuses writes from then on. Other panics go on.
func Recover(err *error) {
	r := recover()
	if r == nil {
		return
	}
	f, ok := r.(Fatal)
	if !ok {
		panic(r)
	}
	*err = f
}
