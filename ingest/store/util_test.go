package store

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func testutilCounter(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	return testutil.ToFloat64(c)
}

// compactAll compacts both instances wholly (settling a bench fixture).
func (s *Store) compactAll() error {
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, true); err != nil {
		return err
	}
	return s.idx.Compact(context.Background(), []byte{0}, []byte{0xff}, true)
}
