package backup

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/shelterwatch/shelterwatch/ingest/reading"
)

// benchReadings is the store size of the benchmarks: a month of one
// reading a minute from 20 devices.
const benchReadings = 20 * 30 * 24 * 60

func benchGateway(b *testing.B) *gateway {
	b.Helper()
	g := newGateway(b, 0)
	rs := make([]reading.Reading, 0, 4096)
	for i := 0; i < benchReadings; i++ {
		r := temp("d"+string(rune('a'+i%20)), i)
		rs = append(rs, r)
		if len(rs) == cap(rs) || i == benchReadings-1 {
			if err := g.store.Append(context.Background(), rs); err != nil {
				b.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	return g
}

// BenchmarkBackup: a backup of a month of 20 devices' readings (864,000),
// written to a file; reports the file's size and the rate.
func BenchmarkBackup(b *testing.B) {
	g := benchGateway(b)
	dir := b.TempDir()
	b.ResetTimer()
	var size int64
	for b.Loop() {
		f, err := os.Create(filepath.Join(dir, "b.swbk"))
		if err != nil {
			b.Fatal(err)
		}
		g.src.Scratch = b.TempDir()
		if _, err := Write(context.Background(), f, g.src, Options{}); err != nil {
			b.Fatal(err)
		}
		size, _ = f.Seek(0, io.SeekCurrent)
		f.Close()
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB/backup")
	b.ReportMetric(benchReadings, "readings/backup")
}

// BenchmarkRestore: checking and restoring that backup into fresh
// directories.
func BenchmarkRestore(b *testing.B) {
	g := benchGateway(b)
	dir := b.TempDir()
	file := filepath.Join(dir, "b.swbk")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Write(context.Background(), f, g.src, Options{}); err != nil {
		b.Fatal(err)
	}
	f.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Restore(context.Background(), file, target(b.TempDir()), RestoreOptions{Facility: "north"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(benchReadings, "readings/restore")
}
