package video

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/testpeer"
)

// TestNetworksBenchMeasuresRealSessions runs a tiny networks bench end to
// end over the emulated 4g link (small clips, two joins per player, a
// short watch, a four-camera wall) and checks that its figures come from
// video that crossed the emulated network into both players.
func TestNetworksBenchMeasuresRealSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a gateway process, cameras, Chromium and WebRTC players: not a -short test")
	}
	o := DefaultNetOptions()
	o.FFmpeg = testpeer.Require(t, "ffmpeg", "ffmpeg")
	testpeer.Require(t, "chromium", "chromium")
	exe, err := os.Executable() // the test binary plays the gateway
	if err != nil {
		t.Fatal(err)
	}
	o.Exe, o.Log = exe, t.Output()
	o.Profiles, o.GOPs, o.Joins, o.Watch, o.Wall = []string{"4g"}, []int{1}, 2, 4*time.Second, 4
	o.Main = ClipSpec{Size: "640x360", FPS: 15, Bitrate: "800k"}
	o.Sub = ClipSpec{Size: "320x180", FPS: 15, Bitrate: "150k"}

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, err := runNetworks(ctx, o)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if res.NoBrowser != "" {
		t.Fatalf("Chromium not measured: %s", res.NoBrowser)
	}
	if len(res.Rows) != 1 {
		t.Fatalf("%d rows, want 1", len(res.Rows))
	}
	row := res.Rows[0]
	for name, j := range map[string]joinStats{"pion": row.Pion, "Chromium": row.Chrome} {
		if len(j.First) != o.Joins || len(j.Failed) > 0 {
			t.Errorf("%s: %d of %d joins got a picture; failures %q", name, len(j.First), o.Joins, j.Failed)
		}
		for _, d := range j.First {
			// At least the emulated round trip of the POST and one of
			// ICE: the joins crossed the 60 ms link.
			if d < 100*time.Millisecond {
				t.Errorf("%s: first frame after %s: the join cannot have crossed a 60 ms link", name, d)
			}
		}
	}
	for name, w := range map[string]*watchResult{"pion": row.PionWatch, "Chromium": row.ChromeWatch} {
		if w == nil {
			t.Fatalf("%s watch: %q", name, row.Errors)
		}
		if w.Frames == 0 || w.Width == 0 || w.Received <= 0 || w.EstP50 <= 0 {
			t.Errorf("%s watch: %+v: want frames, a picture size, bytes and the gateway's estimate", name, *w)
		}
	}
	if res.Wall == nil {
		t.Fatalf("wall: %s", res.WallErr)
	}
	if res.Wall.Sessions != 4 || len(res.Wall.Widths) != 4 || res.Wall.Widths[0] != 320 || res.Wall.Widths[3] != 320 {
		t.Errorf("wall: %+v: want four tiles on the 320-wide sub stream (a wall of four gets sub streams)", *res.Wall)
	}

	var out bytes.Buffer
	printNetReport(&out, o, res)
	for _, want := range []string{"| 4g | gop1s | ", "#### A 4-camera wall in Chromium over one shared 4g link", "- 4g: first frame p99 ≤ 1 s: "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "- poor4g:") {
		t.Errorf("report judges poor4g, which did not run:\n%s", out.String())
	}
	t.Log(out.String())
}
