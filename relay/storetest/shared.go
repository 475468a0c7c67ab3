package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// shared returns the open func of h.Shared for stores with the given
// lease, or skips t when the store cannot be shared.
func shared(t *testing.T, h Harness, lease time.Duration) func(live bool) *store {
	t.Helper()
	if h.Shared == nil {
		t.Skip("Harness.Shared is nil: the store under test keeps its storage to itself (an embedded store)")
	}
	open := h.Shared(t, lease)
	return func(live bool) *store {
		t.Helper()
		return track(t, open(live), "the open func of Harness.Shared")
	}
}

// Stores on one storage see each other's writes, dedup each other's events
// and never hand out one delivery to two of them.
func testSharedStorage(t *testing.T, h Harness) {
	open := shared(t, h, 100000*time.Hour)
	s1, s2 := open(false), open(false)
	ctx := t.Context()
	ev := Event(Base, "k", "a", "b")
	Ingest(t, s1, ev, time.Hour)
	if res := Ingest(t, s2, Event(Base.Add(time.Second), "k", "a"), time.Hour); !res.Duplicate || res.EventID != ev.ID {
		t.Errorf("Ingest of the same key through the second store = %+v, want a duplicate of %s", res, ev.ID)
	}
	if got, err := s2.Event(ctx, ev.ID); err != nil || string(got.Event.Payload) != string(ev.Payload) {
		t.Errorf("the second store's Event(%s) = %v, want the event with its payload", ev.ID, err)
	}
	held := Claim(t, s1, "a", Base, 10)
	if len(held) != 1 {
		t.Fatalf("first store's Claim(a) = %v, want the delivery", ClaimIDs(held))
	}
	if cs := Claim(t, s2, "a", Base.Add(time.Hour), 10); len(cs) != 0 {
		t.Errorf("second store's Claim(a) = %v while the first holds it, want nothing", ClaimIDs(cs))
	}
	if n := backlog(t, s2, "a"); n != 1 {
		t.Errorf("second store's Backlog(a) = %d while the first holds the delivery, want 1", n)
	}
	finish(t, s1, held[0], Base.Add(time.Minute), relay.Delivered, 200)
	wantCounts(t, s2, map[string]relay.StateCounts{"a": {Delivered: 1}, "b": {Pending: 1}})
	if err := s1.SetPaused(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	if p, err := s2.Paused(ctx); err != nil || !p["b"] {
		t.Errorf("second store's Paused() = %v, %v after the first paused b", p, err)
	}

	const n = 60
	for i := range n {
		Ingest(t, []*store{s1, s2}[i%2], Event(Base, fmt.Sprint("c", i), "c"), time.Hour)
	}
	claimConcurrently(t, "c", n, s1, s2)
}

// A store that dies keeps its claims only until their lease ends; then
// another store takes them over, once. Until then NextDue reports the end
// of the lease, so that a dispatcher waits for it without polling.
func testLeaseTakeover(t *testing.T, h Harness) {
	const lease = time.Minute
	open := shared(t, h, lease)
	dead, alive := open(false), open(false)
	ev := Event(Base, "lease", "a")
	Ingest(t, dead, ev, time.Hour)
	if cs := Claim(t, dead, "a", Base, 10); len(cs) != 1 {
		t.Fatalf("first store's Claim = %v, want the delivery", ClaimIDs(cs))
	}
	// The first store dies without Close: its claim stays until the lease ends.
	if due, ok := nextDue(t, alive, "a"); !ok || !due.Equal(Base.Add(lease)) {
		t.Errorf("other store's NextDue while the delivery is held = %v %v, want the end of the lease %v", due, ok, Base.Add(lease))
	}
	if cs := Claim(t, alive, "a", Base.Add(lease-time.Second), 10); len(cs) != 0 {
		t.Fatalf("other store's Claim within the lease = %v, want nothing", ClaimIDs(cs))
	}
	cs := Claim(t, alive, "a", Base.Add(lease+time.Second), 10)
	if len(cs) != 1 || cs[0].Delivery.ID() != relay.DeliveryID(ev.ID, "a") || string(cs[0].Event.Payload) != string(ev.Payload) {
		t.Fatalf("other store's Claim after the lease = %v, want the dead store's delivery with its payload", ClaimIDs(cs))
	}
	if again := Claim(t, alive, "a", Base.Add(lease+2*time.Second), 10); len(again) != 0 {
		t.Errorf("a taken-over delivery was handed out again: %v", ClaimIDs(again))
	}
}

// A live store renews the leases of its claims, so a short lease is taken
// over only from a store that stopped renewing (died), within one lease of
// its claim. Wall-clock time: renewal runs on it.
func testLeaseRenewal(t *testing.T, h Harness) {
	const lease = 400 * time.Millisecond
	open := shared(t, h, lease)
	live, dead, other := open(true), open(false), open(false)
	evLive, evDead := Event(time.Now(), "live", "a"), Event(time.Now(), "dead", "b")
	Ingest(t, live, evLive, time.Hour)
	Ingest(t, live, evDead, time.Hour)
	if cs := Claim(t, live, "a", time.Now(), 1); len(cs) != 1 {
		t.Fatalf("live store's Claim(a) = %v", ClaimIDs(cs))
	}
	claimed := time.Now()
	if cs := Claim(t, dead, "b", claimed, 1); len(cs) != 1 {
		t.Fatalf("dying store's Claim(b) = %v", ClaimIDs(cs))
	}
	time.Sleep(3 * lease)
	if cs := Claim(t, other, "a", time.Now(), 10); len(cs) != 0 {
		t.Errorf("Claim(a) three leases after a live store claimed it = %v, want nothing: its lease is renewed", ClaimIDs(cs))
	}
	var takenAt time.Time
	Eventually(t, 5*time.Second, func() error {
		cs := Claim(t, other, "b", time.Now(), 10)
		if len(cs) != 1 || cs[0].Event.ID != evDead.ID {
			return fmt.Errorf("Claim(b) = %v, want the dead store's delivery", ClaimIDs(cs))
		}
		takenAt = time.Now()
		return nil
	})
	t.Logf("takeover %v after the claim (lease %v)", takenAt.Sub(claimed).Round(time.Millisecond), lease)
}

// A store whose lease ran out while another took the delivery over cannot
// overwrite the new holder's outcome, nor put the delivery back in line:
// its Complete and Release are not applied.
func testLostLease(t *testing.T, h Harness) {
	const lease = time.Minute
	open := shared(t, h, lease)
	slow, fast := open(false), open(false)
	ctx := t.Context()
	ev := Event(Base, "lost", "a")
	Ingest(t, slow, ev, time.Hour)
	first := Claim(t, slow, "a", Base, 1)
	if len(first) != 1 {
		t.Fatalf("first Claim = %v", ClaimIDs(first))
	}
	second := Claim(t, fast, "a", Base.Add(2*lease), 1)
	if len(second) != 1 {
		t.Fatalf("Claim after the lease = %v, want the delivery", ClaimIDs(second))
	}

	late := first[0].Delivery
	late.State, late.Attempts, late.LastStatus = relay.Dead, 1, 410
	if err := slow.Complete(ctx, relay.Outcome{Delivery: late, Attempt: &relay.Attempt{Number: 1, Status: 410}}); err != nil {
		t.Fatalf("the old holder's Complete = %v, want it ignored without an error", err)
	}
	if err := slow.Release(ctx, Base, late); err != nil {
		t.Fatalf("the old holder's Release = %v, want it ignored without an error", err)
	}
	if cs := Claim(t, slow, "a", Base.Add(2*lease+30*time.Second), 1); len(cs) != 0 {
		t.Fatalf("the old holder's Release put the delivery back in line while the new holder has it: %v", ClaimIDs(cs))
	}
	got, err := fast.Event(ctx, ev.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Deliveries[0]; d.State != relay.Pending || len(d.History) != 0 {
		t.Fatalf("after the old holder's late outcome the delivery is %+v, want it untouched (pending, no attempt)", d)
	}

	won := second[0].Delivery
	won.State, won.Attempts, won.LastStatus = relay.Delivered, 1, 200
	complete(t, fast, relay.Outcome{Delivery: won, Attempt: &relay.Attempt{Number: 1, Status: 200}})
	Eventually(t, 5*time.Second, func() error {
		got, err := fast.Event(ctx, ev.ID)
		if err != nil {
			return err
		}
		if d := got.Deliveries[0]; d.State != relay.Delivered || len(d.History) != 1 {
			return fmt.Errorf("the new holder's outcome was not recorded: %+v", d)
		}
		return nil
	})
}
