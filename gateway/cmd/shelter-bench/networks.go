package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/video"
	"github.com/shelterwatch/shelterwatch/internal/netsim"
)

// networksMain measures remote viewing over the emulated networks: first
// frame, freezes, lag and loss per profile in the pion player and in
// Chromium, and a camera wall over one 4g link.
func networksMain(args []string, stdout, stderr io.Writer) int {
	o := video.DefaultNetOptions()
	fs := flag.NewFlagSet("shelter-bench networks", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profiles := fs.String("profiles", strings.Join(o.Profiles, ","), "network profiles, comma-separated: "+strings.Join(netsim.Names(), ", "))
	fs.IntVar(&o.Joins, "joins", o.Joins, "joins per profile, camera and player")
	fs.DurationVar(&o.Watch, "watch", o.Watch, "how long the sustained viewers and the camera wall watch")
	fs.IntVar(&o.Wall, "wall", o.Wall, "cameras on the wall over one 4g link (0: none)")
	fs.BoolVar(&o.Chromium, "chromium", o.Chromium, "also measure in Debian's Chromium")
	fs.StringVar(&o.FFmpeg, "ffmpeg", o.FFmpeg, "ffmpeg binary (makes the clips)")
	quick := fs.Bool("quick", false, "smoke run: lan and 4g, 4 joins, 10 s watches, a 4-camera wall")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	o.Profiles = strings.Split(*profiles, ",")
	if *quick {
		o.Profiles, o.Joins, o.Watch, o.Wall = []string{"lan", "4g"}, 4, 10*time.Second, 4
	}
	for _, p := range o.Profiles {
		if _, err := netsim.Lookup(p); err != nil {
			fmt.Fprintln(stderr, "shelter-bench networks:", err)
			return 2
		}
	}
	if o.Joins < 1 || o.Watch <= 0 || o.Wall < 0 {
		fmt.Fprintln(stderr, "shelter-bench networks: -joins must be ≥ 1, -watch > 0, -wall ≥ 0")
		return 2
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "shelter-bench networks: find own binary: %v\n", err)
		return 1
	}
	o.Exe, o.Log = exe, stderr
	ctx, stop := interruptible()
	defer stop()
	if err := video.RunNetworks(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "shelter-bench networks:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}
