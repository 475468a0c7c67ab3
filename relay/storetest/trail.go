package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// eventDetail loads the event id, failing t on an error.
func eventDetail(t testing.TB, s relay.Store, id string) *relay.EventDetail {
	t.Helper()
	d, err := s.Event(t.Context(), id)
	if err != nil {
		t.Fatalf("Event(%s): %v", id, err)
	}
	return d
}

// An event keeps its trail: the verify kind, the routes and how many of
// its targets they chose, through a delivery added later; later
// duplicates are counted on the first event, with the time of the last.
func testTrail(t *testing.T, h Harness) {
	s := open(t, h)
	accepted := Event(Base, "accepted", "a", "b")
	accepted.Trail = relay.Trail{Verify: "hmac-sha256", Routes: []string{"videos", "audit"}, Chosen: 2}
	unrouted := Event(Base.Add(time.Second), "unrouted")
	unrouted.Trail = relay.Trail{Verify: "none", Routes: []string{}}
	Ingest(t, s, accepted, time.Hour)
	Ingest(t, s, unrouted, time.Hour)

	got := eventDetail(t, s, accepted.ID).Event.Trail
	if got.Verify != "hmac-sha256" || !slices.Equal(got.Routes, []string{"videos", "audit"}) || got.Chosen != 2 || got.Duplicates != 0 || !got.LastDuplicate.IsZero() {
		t.Errorf("trail of an accepted event = %+v, want verify hmac-sha256, routes videos and audit, 2 chosen, no duplicates", got)
	}
	got = eventDetail(t, s, unrouted.ID).Event.Trail
	if got.Verify != "none" || len(got.Routes) != 0 || got.Chosen != 0 || got.Duplicates != 0 {
		t.Errorf("trail of an unrouted event = %+v, want verify none, no routes, none chosen", got)
	}

	// Two duplicates, the last one 90.5 s after the event.
	for _, at := range []time.Time{Base.Add(time.Minute), Base.Add(90*time.Second + 500*time.Millisecond)} {
		dup := Event(at, "accepted", "a", "b")
		if r := Ingest(t, s, dup, time.Hour); !r.Duplicate || r.EventID != accepted.ID {
			t.Fatalf("Ingest of a duplicate = %+v, want a duplicate of %s", r, accepted.ID)
		}
	}
	got = eventDetail(t, s, accepted.ID).Event.Trail
	if want := Base.Add(90*time.Second + 500*time.Millisecond); got.Duplicates != 2 || !got.LastDuplicate.Equal(want) {
		t.Errorf("trail after two duplicates = %d duplicates, the last at %v; want 2, at %v", got.Duplicates, got.LastDuplicate, want)
	}
	if got.Verify != "hmac-sha256" || got.Chosen != 2 {
		t.Errorf("trail after two duplicates = %+v, want the first event's as it was", got)
	}

	// A delivery created later joins the targets, not the chosen ones.
	swap(t, s, relay.Swap{New: relay.NewDelivery(accepted, "c")})
	d := eventDetail(t, s, accepted.ID)
	if got := d.Event.Trail; !slices.Equal(d.Event.Targets, []string{"a", "b", "c"}) || got.Chosen != 2 || !slices.Equal(got.Routes, []string{"videos", "audit"}) || got.Duplicates != 2 {
		t.Errorf("after a delivery was added: targets %v, trail %+v; want targets a, b, c with 2 chosen and the trail kept", d.Event.Targets, got)
	}
	// The trail outlasts a restart.
	s = reopen(t, h, s)
	if got := eventDetail(t, s, accepted.ID).Event.Trail; got.Duplicates != 2 || got.Verify != "hmac-sha256" {
		t.Errorf("trail after a reopen = %+v, want it kept", got)
	}
}

// An attempt keeps what the delivery waited for before it, and the replay
// that put it back in line.
func testAttemptWaits(t *testing.T, h Harness) {
	s := open(t, h)
	ev := Event(Base, "waits", "a")
	Ingest(t, s, ev, time.Hour)
	cs := Claim(t, s, "a", Base, 1)
	d := cs[0].Delivery
	d.State, d.Attempts, d.LastStatus, d.UpdatedAt = relay.Delivered, 1, 200, Base.Add(time.Minute)
	want := relay.Attempt{Number: 1, StartedAt: Base.Add(time.Minute), Duration: time.Millisecond, Status: 200,
		Waited: relay.WaitingBreakerOpen, WaitedFor: 30 * time.Second, Replay: "rpl_01"}
	a := want
	complete(t, s, relay.Outcome{Delivery: d, Attempt: &a})
	Eventually(t, 5*time.Second, func() error {
		ds := eventDetail(t, s, ev.ID).Deliveries
		if len(ds) != 1 || len(ds[0].History) != 1 {
			return fmt.Errorf("deliveries %+v, want one with one attempt", ds)
		}
		got := ds[0].History[0]
		if got.Waited != want.Waited || got.WaitedFor != want.WaitedFor || got.Replay != want.Replay || got.Status != 200 || !got.StartedAt.Equal(want.StartedAt) {
			return fmt.Errorf("attempt = %+v, want %+v", got, want)
		}
		return nil
	})
}
