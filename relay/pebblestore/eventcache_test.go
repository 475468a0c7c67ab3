package pebblestore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// An event is kept for the claims of its other targets, then dropped;
// the cache stays within its bytes whatever is put, the oldest going.
func TestEventCache(t *testing.T) {
	var c eventCache
	ev := &relay.Event{ID: "e1", Payload: []byte("{}")}
	c.put(ev, 2)
	if got := c.take("e1"); got != ev {
		t.Fatalf("first take: %v", got)
	}
	if got := c.take("e1"); got != ev {
		t.Fatalf("second take: %v", got)
	}
	if got := c.take("e1"); got != nil {
		t.Fatalf("a third take found the event kept for two")
	}
	big := make([]byte, eventCacheBytes/20)
	const n = 100
	for i := range n {
		c.put(&relay.Event{ID: fmt.Sprint("big", i), Payload: big}, 1)
		if c.bytes > eventCacheBytes {
			t.Fatalf("after %d events: %d bytes kept, over %d", i+1, c.bytes, eventCacheBytes)
		}
	}
	if c.take("big0") != nil || c.take(fmt.Sprint("big", n-1)) == nil {
		t.Error("the oldest event is kept, or the newest is not")
	}
	if len(c.order)-c.head > 2*len(c.m)+64 {
		t.Errorf("order holds %d entries for %d events", len(c.order)-c.head, len(c.m))
	}
	c.put(&relay.Event{ID: "huge", Payload: make([]byte, eventCacheBytes)}, 1)
	if c.take("huge") != nil {
		t.Error("an event larger than a sixteenth of the cache was kept")
	}
}

// Claims of the two targets of an event read it once between them, and
// both get it whole.
func TestClaimReadsFannedOutEventOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	ev := storetest.Event(now, "k", "a", "b")
	s := withEvent(t, ev)
	ca, err := s.Claim(ctx, "a", now, 1)
	if err != nil || len(ca) != 1 {
		t.Fatalf("claim a: %v, %v", ca, err)
	}
	if len(s.events.m) != 1 {
		t.Fatalf("%d events kept after the first target's claim; want 1", len(s.events.m))
	}
	cb, err := s.Claim(ctx, "b", now, 1)
	if err != nil || len(cb) != 1 {
		t.Fatalf("claim b: %v, %v", cb, err)
	}
	if cb[0].Event != ca[0].Event || string(cb[0].Event.Payload) != string(ev.Payload) {
		t.Errorf("the second target's claim did not get the event the first read")
	}
	if len(s.events.m) != 0 {
		t.Errorf("%d events kept once every target claimed; want 0", len(s.events.m))
	}
}

// withEvent opens a store, closed with the test, that holds ev.
func withEvent(t *testing.T, ev *relay.Event) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "s"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Ingest(context.Background(), ev, time.Hour); err != nil {
		t.Fatal(err)
	}
	return s
}
