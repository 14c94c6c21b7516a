package forward

import (
	"strings"
	"testing"
	"time"
)

// conditions records what a watchdog reported, last per device.
type conditions map[string]string

func (c conditions) Set(device, condition string) { c[device] = condition }

func TestWatchReportsStalledAndRefusedTargets(t *testing.T) {
	got := conditions{}
	f := &Forwarder{opts: Options{Health: got}}
	// A short outage is normal on a 4G link: no fault.
	f.report(Status{Target: "province", BacklogAge: 3 * time.Minute, BacklogPoints: 9000})
	if got["gateway.influx.province"] != "ok" || got["gateway.influx-auth.province"] != "ok" {
		t.Fatalf("after 3 minutes behind: %v", got)
	}
	f.report(Status{Target: "province", BacklogAge: 20 * time.Minute, BacklogPoints: 600000,
		LastError: "network: connection refused", AuthFailing: true})
	if want := "InfluxDB has confirmed nothing for more than 15m0s; the forwarders API shows the last error"; got["gateway.influx.province"] != want {
		t.Errorf("stalled: %q, want %q", got["gateway.influx.province"], want)
	}
	if !strings.Contains(got["gateway.influx-auth.province"], "refuses the gateway's credentials") {
		t.Errorf("auth: %q", got["gateway.influx-auth.province"])
	}
	// The text does not change while the outage goes on (one reading per
	// change, not per look).
	before := got["gateway.influx.province"]
	f.report(Status{Target: "province", BacklogAge: 40 * time.Minute, BacklogPoints: 900000, LastError: "server: 500 Internal Server Error"})
	if got["gateway.influx.province"] != before {
		t.Errorf("the stalled text changed with the backlog: %q → %q", before, got["gateway.influx.province"])
	}
	// Caught up again: both clear.
	f.report(Status{Target: "province"})
	if got["gateway.influx.province"] != "ok" || got["gateway.influx-auth.province"] != "ok" {
		t.Fatalf("after catching up: %v", got)
	}
}
