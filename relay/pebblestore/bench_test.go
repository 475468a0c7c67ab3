package pebblestore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
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

// BenchmarkComplete measures delivery outcomes written by 64 concurrent
// callers, as the dispatcher's attempts finish, of deliveries ingested and
// claimed beforehand.
func BenchmarkComplete(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	now := time.Now()
	for i := range b.N {
		if _, err := s.Ingest(ctx, storetest.Event(now, fmt.Sprintf("key-%d", i), "a"), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	var claims []relay.Claim
	for len(claims) < b.N {
		cs, err := s.Claim(ctx, "a", now, 1000)
		if err != nil || len(cs) == 0 {
			b.Fatalf("Claim: %d claims, %v", len(cs), err)
		}
		claims = append(claims, cs...)
	}
	var next atomic.Int64
	b.SetParallelism(32) // × GOMAXPROCS callers
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d := claims[next.Add(1)-1].Delivery
			d.State, d.Attempts, d.LastStatus, d.UpdatedAt = relay.Delivered, 1, 200, now
			if err := s.Complete(ctx, relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: now, Status: 200}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
