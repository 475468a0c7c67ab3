package pebblestore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// BenchmarkIngest measures durable ingests from 64 concurrent callers, the
// shape of the HTTP hot path without HTTP. It also reports what an ingest
// costs in the background, once the memtable is flushed and compactions
// are done: the bytes written to the WAL, flushed and compacted per event,
// and the process's CPU time per event (foreground and background).
func BenchmarkIngest(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "bench"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	m0, cpu0 := s.db.Metrics(), cpuTime(b)
	storetest.BenchIngest(b, s)
	settle(b, s)
	m1, cpu1 := s.db.Metrics(), cpuTime(b)
	n := float64(b.N)
	b.ReportMetric(float64(m1.WAL.BytesWritten-m0.WAL.BytesWritten)/n, "wal-B/ev")
	flushed, compacted := levelBytes(m1)
	f0, c0 := levelBytes(m0)
	b.ReportMetric(float64(flushed-f0)/n, "flush-B/ev")
	b.ReportMetric(float64(compacted-c0)/n, "compact-B/ev")
	b.ReportMetric(float64(cpu1-cpu0)/n, "cpu-ns/ev")
}

// settle flushes the memtable and waits until no compaction runs for a
// while, so that the background work of the ingests is all counted.
func settle(b *testing.B, s *Store) {
	if err := s.db.Flush(); err != nil {
		b.Fatal(err)
	}
	quiet := 0
	for deadline := time.Now().Add(time.Minute); quiet < 5 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		if m := s.db.Metrics(); m.Compact.NumInProgress == 0 && m.Flush.NumInProgress == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

func levelBytes(m *pebble.Metrics) (flushed, compacted uint64) {
	for _, l := range m.Levels {
		flushed += l.TableBytesFlushed + l.BlobBytesFlushed
		compacted += l.TableBytesCompacted + l.BlobBytesCompacted
	}
	return flushed, compacted
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
