// Package procstat reads how much CPU time and memory a process has used,
// from Linux's /proc and getrusage. The benches run the gateway, the load
// generators and the servers they compare with (mosquitto, go2rtc, influxd)
// as separate processes, so that each figure here is one party's own; they
// take the difference of two readings around a measured window.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SelfCPU is the CPU time (user + system, all threads) this process has
// used.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Mem returns process pid's peak (VmHWM) and current (VmRSS) resident set
// size in bytes, from /proc/<pid>/status.
func Mem(pid int) (peak, cur int64, err error) {
	v, err := statusKB(pid, "VmHWM:", "VmRSS:")
	return v[0], v[1], err
}

// MemParts returns process pid's resident anonymous memory (RssAnon: heap,
// stacks, C allocations) and resident file-backed pages (RssFile: mostly
// its own executable, shared and reclaimable), in bytes.
func MemParts(pid int) (anon, file int64, err error) {
	v, err := statusKB(pid, "RssAnon:", "RssFile:")
	return v[0], v[1], err
}

// statusKB reads the kB fields named by keys from /proc/<pid>/status, in
// bytes (0 for a field that is missing).
func statusKB(pid int, keys ...string) ([]int64, error) {
	out := make([]int64, len(keys))
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out, err
	}
	for line := range strings.Lines(string(b)) {
		for i, k := range keys {
			if !strings.HasPrefix(line, k) {
				continue
			}
			if f := strings.Fields(line); len(f) >= 2 {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					out[i] = kb << 10
				}
			}
		}
	}
	return out, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// CPU returns the CPU time (user + system, all threads) of process pid
// from /proc/<pid>/stat.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may contain spaces.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	// After the name: state(3) ppid(4) ... utime(14) stime(15).
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat: %q", pid, s)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// MachineBusy returns the CPU time all CPUs of the machine have spent not
// idle (user, nice, system, irq, softirq, steal) since boot, from the first
// line of /proc/stat. What the measured processes did not use of it went
// to the kernel (softirq for loopback TCP) and to other programs.
func MachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat: %q", line)
	}
	var busy int64
	for i, v := range f[1:9] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/stat: %q", line)
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}
