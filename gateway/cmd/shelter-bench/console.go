package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/shelterwatch/shelterwatch/internal/bench/console"
)

// consoleMain measures the web console in Chromium: first picture of a
// camera page and the JavaScript the alarm board needs.
func consoleMain(args []string, stdout, stderr io.Writer) int {
	o := console.Options{Opens: 20, Log: stderr}
	fs := flag.NewFlagSet("shelter-bench console", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Opens, "opens", o.Opens, "camera page opens per camera")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if o.Opens < 1 {
		fmt.Fprintln(stderr, "shelter-bench console: -opens must be ≥ 1")
		return 2
	}
	ctx, stop := interruptible()
	defer stop()
	if err := console.Run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "shelter-bench console:", err)
		return 1
	}
	return 0
}
