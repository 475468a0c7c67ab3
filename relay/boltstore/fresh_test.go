package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// The payloads kept in memory for first claims stay under maxFreshBytes
// however large the backlog, are given back as deliveries are claimed, and
// claims return the right payload whether it came from memory or disk.
func TestFreshPayloadsAreBounded(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "fresh.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const events, size = 48, 1 << 20 // 48 MiB of payloads, over the 32 MiB bound
	want := map[string][]byte{}
	now := time.Now()
	for i := range events {
		body := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		ev := &relay.Event{ID: relay.NewEventID(now), Source: "hoox", Task: "t", Status: "s",
			DedupKey: fmt.Sprintf("t:%d", i), ReceivedAt: now, Targets: []string{"a", "b"}, Payload: body}
		if _, err := s.Ingest(ctx, ev, time.Hour); err != nil {
			t.Fatal(err)
		}
		want[ev.ID] = body
		s.mu.Lock()
		fb := s.freshBytes
		s.mu.Unlock()
		if fb > maxFreshBytes {
			t.Fatalf("after %d ingests of 1 MiB, %d bytes of payloads held in memory, want at most %d", i+1, fb, maxFreshBytes)
		}
	}
	for _, target := range []string{"a", "b"} {
		claims, err := s.Claim(ctx, target, time.Now(), events)
		if err != nil {
			t.Fatal(err)
		}
		if len(claims) != events {
			t.Fatalf("Claim(%s) returned %d deliveries, want %d", target, len(claims), events)
		}
		for _, c := range claims {
			if !bytes.Equal(c.Event.Payload, want[c.Event.ID]) {
				t.Errorf("claim of %s for %s: payload of %d bytes differs from the one ingested", c.Event.ID, target, len(c.Event.Payload))
			}
			if c.Delivery.Attempts != 0 || c.Delivery.State != relay.Pending {
				t.Errorf("first claim of %s: attempts %d, state %q; want 0, pending", c.Delivery.ID(), c.Delivery.Attempts, c.Delivery.State)
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.freshBytes != 0 {
		t.Errorf("after every delivery was claimed, %d payload bytes still held in memory, want 0", s.freshBytes)
	}
}
