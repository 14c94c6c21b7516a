package main

import (
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/shelterwatch/shelterwatch/internal/bench/audit"
)

func auditMain(args []string, stdout, stderr io.Writer) int {
	o := audit.DefaultOptions()
	fs := flag.NewFlagSet("shelter-bench audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Entries, "entries", o.Entries, "entries in the log before the measurement")
	fs.IntVar(&o.Readers, "readers", o.Readers, "concurrent readers while appends go on")
	fs.IntVar(&o.Limit, "limit", o.Limit, "entries per read (the newest)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "each phase: appends alone, with paced readers, with readers back to back")
	fs.DurationVar(&o.Pace, "pace", o.Pace, "wait between one reader's reads in the paced phase")
	fs.StringVar(&o.Dir, "dir", "", "directory for the log (default: a temporary directory, removed at the end); its file system is the one measured")
	quick := fs.Bool("quick", false, "smoke run: 100,000 entries, 3s phases")
	if !parseFlags(fs, args, stderr) {
		return 2
	}
	if *quick {
		o.Entries, o.Duration = 100_000, 3*time.Second
	}
	if o.Entries < o.Limit || o.Readers < 1 || o.Limit < 1 || o.Duration <= 0 {
		fmt.Fprintln(stderr, "shelter-bench audit: -readers and -limit must be ≥ 1, -entries ≥ -limit, -duration > 0")
		return 2
	}
	o.Log = stderr
	ctx, stop := interruptible()
	defer stop()
	if err := audit.Run(ctx, o, stdout); err != nil {
		fmt.Fprintln(stderr, "shelter-bench audit:", err)
		return 1
	}
	return 0
}
