package procstat

import (
	"os"
	"testing"
	"time"
)

// TestSelf reads this process's figures through every path the benches
// use for other processes.
func TestSelf(t *testing.T) {
	buf := make([]byte, 8<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	sum := 0
	for end := time.Now().Add(50 * time.Millisecond); time.Now().Before(end); {
		for _, b := range buf[:4096] {
			sum += int(b)
		}
	}
	if sum == 0 {
		t.Fatal("buffer is all zero")
	}
	peak, cur, err := Mem(os.Getpid())
	if err != nil || cur < int64(len(buf)) || peak < cur {
		t.Errorf("Mem = peak %d, current %d, %v: want current ≥ %d ≤ peak", peak, cur, err, len(buf))
	}
	cpu, err := CPU(os.Getpid())
	if err != nil || cpu <= 0 {
		t.Errorf("CPU = %v, %v: want > 0 after 50ms busy", cpu, err)
	}
	if self := SelfCPU(); self <= 0 {
		t.Errorf("SelfCPU = %v: want > 0", self)
	}
	if busy, err := MachineBusy(); err != nil || busy < cpu {
		t.Errorf("MachineBusy = %v, %v: want ≥ this process's %v", busy, err, cpu)
	}
	if _, _, err := Mem(1 << 30); err == nil {
		t.Error("Mem of a process that does not exist: want an error")
	}
}
