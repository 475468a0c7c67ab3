package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// While the storage is down, writes are errors and Ping says so; nothing
// acked before is lost, and a delivery whose outcome could not be written
// is due again once the storage is back (relay.Queue's contract).
func testOutage(t *testing.T, h Harness) {
	if h.Outage == nil {
		t.Skip("Harness.Outage is nil: the storage under test cannot be made to fail")
	}
	s := open(t, h)
	ctx := t.Context()
	e1, e2, e3 := Event(Base, "o1", "a"), Event(Base.Add(time.Second), "o2", "a"), Event(Base.Add(2*time.Second), "o3", "a", "b")
	for _, ev := range []*relay.Event{e1, e2, e3} {
		Ingest(t, s, ev, time.Hour)
	}
	held := Claim(t, s, "a", Base.Add(time.Second), 2) // e1 and e2
	if len(held) != 2 {
		t.Fatalf("Claim(a) = %v, want the deliveries of o1 and o2", ClaimIDs(held))
	}

	restore := h.Outage(t, s.Store)
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()
	late := Event(Base.Add(3*time.Second), "late", "a")
	if _, err := s.Ingest(ctx, late, time.Hour); err == nil {
		t.Error("Ingest during an outage = nil, want an error")
	}
	if err := s.Ping(ctx); err == nil {
		t.Error("Ping during an outage, after a write failed = nil, want an error")
	}
	retry := held[0].Delivery
	retry.Attempts, retry.LastStatus, retry.NextAttemptAt = 1, 503, Base.Add(time.Minute)
	if err := s.Complete(ctx, relay.Outcome{Delivery: retry, Attempt: &relay.Attempt{Number: 1, Status: 503}}); err == nil {
		t.Error("Complete(retry later) during an outage = nil, want an error: the outcome was not written")
	}
	// A final outcome may be written after Complete returns, and so may
	// fail without an error from Complete.
	final := held[1].Delivery
	final.State, final.Attempts = relay.Delivered, 1
	s.Complete(ctx, relay.Outcome{Delivery: final, Attempt: &relay.Attempt{Number: 1, Status: 200}})
	if err := s.SetPaused(ctx, "a", true); err == nil {
		t.Error("SetPaused during an outage = nil, want an error")
	}
	restore()
	restored = true

	// The storage takes writes again, and Ping says so once one is written
	// (a store may learn of its recovery only from a write).
	var res relay.IngestResult
	Eventually(t, 10*time.Second, func() (err error) {
		res, err = s.Ingest(ctx, late, time.Hour)
		return err
	})
	if _, err := s.Event(ctx, res.EventID); err != nil {
		t.Errorf("Ingest after the outage = %+v, and Event(%s): %v", res, res.EventID, err)
	}
	Eventually(t, 10*time.Second, func() error { return s.Ping(ctx) })
	for _, ev := range []*relay.Event{e1, e2, e3} {
		got, err := s.Event(ctx, ev.ID)
		if err != nil || string(got.Event.Payload) != string(ev.Payload) {
			t.Errorf("after the outage, Event(%s), acked before it: %v; want it with its payload", ev.DedupKey, err)
		}
	}
	// Claimed at the wall clock's time: a store may put back what it
	// could not write a little after now.
	got := map[string]relay.Claim{}
	Eventually(t, 10*time.Second, func() error {
		for _, c := range Claim(t, s, "a", time.Now().Add(time.Hour), 10) {
			got[c.Delivery.ID()] = c
		}
		d, _, err := s.LoadDelivery(ctx, final.ID())
		if err != nil {
			return err
		}
		switch _, again := got[final.ID()]; {
		case got[retry.ID()].Event == nil:
			return fmt.Errorf("the delivery whose Complete failed (%s) is not due again; claimed %v", retry.ID(), keys(got))
		case d.State != relay.Delivered && !again:
			return fmt.Errorf("the delivery whose final outcome failed (%s) is neither delivered nor due again: %+v", final.ID(), d)
		}
		return nil
	})
	if c := got[retry.ID()]; c.Delivery.Attempts != 0 || string(c.Event.Payload) != string(e1.Payload) {
		t.Errorf("the delivery due again = %+v with payload %q, want the record before the failed outcome (0 attempts) and o1's payload", c.Delivery, c.Event.Payload)
	}
	if c, ok := got[relay.DeliveryID(e3.ID, "a")]; !ok || string(c.Event.Payload) != string(e3.Payload) {
		t.Errorf("after the outage, o3's delivery, acked and never claimed, is not handed out: claimed %v", keys(got))
	}

	if err := s.SetPaused(ctx, "a", true); err != nil {
		t.Errorf("SetPaused after the outage: %v", err)
	}
}

func keys(m map[string]relay.Claim) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
