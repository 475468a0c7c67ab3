package pebblestore

import (
	"path/filepath"
	"testing"

	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// BenchmarkIngest measures durable ingests from 64 concurrent callers, the
// shape of the HTTP hot path without HTTP.
func BenchmarkIngest(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchIngest(b, s)
}
