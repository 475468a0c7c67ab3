package relay

import (
	"context"
	"testing"
	"time"
)

// A busy target's feeder waits a little for a quarter of its slots to
// claim them at once, but never past batchLinger, and not at all when
// that many are free.
func TestSlotsTakeLingersWhenBusy(t *testing.T) {
	ctx := context.Background()
	s := newSlots(8)
	if n := s.take(ctx); n != 8 {
		t.Fatalf("take of 8 free slots: %d", n)
	}
	s.give(1)
	start := time.Now()
	if n := s.take(ctx); n != 1 {
		t.Fatalf("take of 1 free slot: %d", n)
	}
	if waited := time.Since(start); waited < batchLinger {
		t.Errorf("take of 1 free slot of 8 returned after %s; want it to wait %s for a second", waited, batchLinger)
	}
	s.give(3)
	start = time.Now()
	if n := s.take(ctx); n != 3 || time.Since(start) >= batchLinger {
		t.Errorf("take of 3 free slots of 8: %d after %s; want 3 at once", n, time.Since(start))
	}
}
