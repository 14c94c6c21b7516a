package main

import (
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestKill9DuringReplayStaysExact lets a backlog build up while InfluxDB is
// down, brings InfluxDB back, kills the gateway with SIGKILL in the middle
// of the replay, restarts it, and checks that InfluxDB ends up holding
// every acknowledged reading exactly once, with the right last values.
func TestKill9DuringReplayStaysExact(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	db := testpeer.StartInfluxDB(t, "shelter")
	db.Kill(t) // down from the start: everything becomes backlog
	bin := buildGateway(t)
	dir := t.TempDir()
	const devices, perDevice = 4, 2500
	cfgPath := writeConfig(t, dir, devices, fmt.Sprintf(`influxdb:
  - {id: facility, url: %q, version: 1, database: shelter, batch_size: 100, linger: 0s, timeout: 2s, backoff_max: 500ms}
`, db.URL()))

	g := startGateway(t, bin, cfgPath)
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	var wg sync.WaitGroup
	for i := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, ok := connectDevice(t, g.broker, i)
			if !ok {
				return
			}
			defer c.Disconnect(0)
			// A window of publishes in flight, each acknowledged (= stored).
			toks := make([]paho.Token, 0, 64)
			for n := range perDevice {
				at := base.Add(time.Duration(n) * time.Millisecond).UTC()
				payload := fmt.Sprintf(`{"time":%q,"values":{"temperature":%g}}`, at.Format(time.RFC3339Nano), float64(n)/100)
				toks = append(toks, c.Publish(fmt.Sprintf("sw/d%d", i), 1, false, payload))
				if len(toks) == cap(toks) || n == perDevice-1 {
					for _, tok := range toks {
						if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
							t.Errorf("device %d: publish not acknowledged: %v", i, tok.Error())
							return
						}
					}
					toks = toks[:0]
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	const total = devices * perDevice

	count := func() int {
		series, err := db.TryQuery("shelter", `SELECT count("value") FROM "temperature"`)
		if err != nil || len(series) == 0 {
			return 0
		}
		return int(series[0].Values[0][1].(float64))
	}
	db.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	// Kill once a tenth of the backlog is through.
	for count() < total/10 {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway sent %d readings within 30s of InfluxDB coming back", count())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := g.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-g.done
	atKill := count()
	if atKill >= total {
		t.Fatalf("the replay was complete (%d readings) before the kill: nothing was tested", atKill)
	}

	g2 := startGateway(t, bin, cfgPath)
	deadline = time.Now().Add(60 * time.Second)
	for count() < total {
		if time.Now().After(deadline) {
			t.Fatalf("InfluxDB holds %d of %d readings 60s after the restart; the gateway logged:\n%s", count(), total, g2.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	series := db.Query(t, "shelter", `SELECT count("value"), last("value") FROM "temperature" GROUP BY "device"`)
	if len(series) != devices {
		t.Fatalf("%d device series in InfluxDB, want %d", len(series), devices)
	}
	for _, s := range series {
		n, last := int(s.Values[0][1].(float64)), s.Values[0][2].(float64)
		if want := float64(perDevice-1) / 100; n != perDevice || last != want {
			t.Errorf("%s: %d readings, last %v; want %d, last %v", s.Tags["device"], n, last, perDevice, want)
		}
	}
	t.Logf("killed with %d of %d readings in InfluxDB; after the restart exactly %d", atKill, total, total)
}
