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

// A feeder stopped before it takes takes none, even when slots are free
// (select may pick the slot over the ended context): it claims nothing
// more, and every slot stays free.
func TestSlotsTakeAfterStop(t *testing.T) {
	s := newSlots(8)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if n := s.take(ctx); n != 0 {
			t.Fatalf("take with its context ended and 8 free slots = %d, want 0", n)
		}
		if len(s) != 8 {
			t.Fatalf("%d slots free after a take whose context had ended, want 8", len(s))
		}
	}
}
