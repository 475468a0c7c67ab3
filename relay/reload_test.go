package relay_test

import (
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
)

// A reload that removes a target lets its attempt in flight finish and be
// recorded, stops new attempts, and keeps its queued deliveries stored; one
// that adds a target starts delivering to it.
func TestReloadRemovesAndAddsTargets(t *testing.T) {
	slow := newSink(t, "slow", always(answer{delay: 400 * time.Millisecond}))
	kept, added := newSink(t, "kept", ok), newSink(t, "added", ok)
	ts := target(slow)
	ts.MaxInFlight = 1
	h := startRelay(t, settingsFor(t, ts, target(kept)), "")
	for i := range 3 {
		h.send(t, videoBody(time.Now().Format("150405.000")+string(rune('a'+i))))
	}
	slow.waitCount(t, 1, 5*time.Second) // one attempt in flight, two queued

	if err := h.srv.Reload(t.Context(), settingsFor(t, target(kept), target(added)), "new"); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	id := h.send(t, videoBody("after_reload"))
	added.waitCount(t, 1, 5*time.Second)
	kept.waitCount(t, 4, 5*time.Second)
	if got := added.requests()[0].id(); got != id {
		t.Errorf("the added target got %s, want the event sent after the reload %s", got, id)
	}
	h.waitDeliveries(t, "slow", "delivered", 1, 5*time.Second) // the attempt in flight ends and is recorded
	time.Sleep(300 * time.Millisecond)
	if n := slow.count(); n != 1 {
		t.Errorf("the removed target got %d requests, want only the one in flight at the reload", n)
	}
	pending, err := h.store.Deliveries(t.Context(), relay.DeliveryFilter{Target: "slow", State: relay.Pending})
	if err != nil || len(pending) != 2 {
		t.Errorf("pending deliveries of the removed target = %d, %v; want the 2 queued, kept", len(pending), err)
	}

	// A config whose target cannot be built changes nothing.
	unbuildable := target(kept)
	unbuildable.TLS.CAFile = "/nonexistent/ca.pem"
	if err := h.srv.Reload(t.Context(), settingsFor(t, unbuildable), "bad"); err == nil {
		t.Fatal("Reload with an unreadable CA file succeeded")
	}
	h.send(t, videoBody("after_bad_reload"))
	added.waitCount(t, 2, 5*time.Second)
}

// A dedup.ttl raised by a reload reaches the embedded store's pruning of
// marks: an event's duplicate sent after the old ttl, within the new one,
// is still a duplicate once pruning has run.
func TestReloadRaisesDedupTTLForPruning(t *testing.T) {
	a := newSink(t, "a", ok)
	withTTL := func(ttl time.Duration) relay.Settings {
		set := settingsFor(t, target(a))
		set.DedupTTL = ttl
		return set
	}
	h := startRelay(t, withTTL(time.Second), "")
	first := h.send(t, videoBody("ttl_raised"))
	if err := h.srv.Reload(t.Context(), withTTL(5*time.Minute), "raised"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // past the old ttl
	if _, err := h.store.(*pebblestore.Store).Prune(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := h.post(t, "/hooks/hoox", videoBody("ttl_raised"))
	if ans := r.answer(t); r.status != 200 || ans.Status != "duplicate" || ans.EventID != first {
		t.Errorf("duplicate 1.5s after the first, dedup.ttl reloaded from 1s to 5m, pruned: %s; want 200 duplicate of %s", r, first)
	}
}
