package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// BenchIngest measures durable ingests into s from 64 concurrent callers
// (on two cores), the shape of the HTTP hot path without HTTP, with unique
// events of two targets. Both stores' BenchmarkIngest run it, so that
// their figures compare.
func BenchIngest(b *testing.B, s relay.Store) {
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
	b.StopTimer()
}
