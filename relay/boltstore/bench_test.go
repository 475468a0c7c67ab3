package boltstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// BenchmarkIngest measures durable ingests from 64 concurrent callers, the
// shape of the HTTP hot path without HTTP.
func BenchmarkIngest(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var seq atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := seq.Add(1)
			now := time.Now()
			ev := &relay.Event{ID: relay.NewEventID(now), Source: "hoox", Task: "video_generate", Status: "completed",
				DedupKey: fmt.Sprintf("video_generate:run_%d:completed", i), ReceivedAt: now,
				Targets: []string{"first", "second"},
				Payload: fmt.Appendf(nil, `{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"v","cost":5}}`, i)}
			if _, err := s.Ingest(context.Background(), ev, time.Hour); err != nil {
				b.Fatal(err)
			}
		}
	})
}
