package relay_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// A replay that resumes over a batch it had stored but not yet recorded
// in its progress (the relay died between the two) does not send those
// deliveries again, and counts them: the replay's id on a delivery marks
// the step as done.
func TestReplayResumeSkipsItsOwnDeliveries(t *testing.T) {
	onStores(t, func(t *testing.T, open func() relay.Store) {
		old, fresh, held := newSink(t, "old", ok), newSink(t, "fresh", ok), newSink(t, "held", ok)
		set := replaySettings(t, old, fresh, held, "old", "fresh")
		store := open()
		h := startRelayOn(t, set, store)
		const n = 6
		for i := range n {
			h.send(t, videoBody(fmt.Sprintf("rs_%d", i)))
		}
		h.waitDeliveries(t, "fresh", "delivered", n, 10*time.Second)
		var r relay.ReplayJSON
		if code, body := h.apiBody(t, "POST", "/api/v1/replays", `{"since":"1h","rate":1000}`, &r); code != http.StatusAccepted {
			t.Fatalf("POST /api/v1/replays = %d %s", code, body)
		}
		r = h.waitReplay(t, r.ReplayID, relay.ReplayDone)
		old.waitCount(t, 2*n, 10*time.Second)
		fresh.waitCount(t, 2*n, 10*time.Second)
		if err := h.stop(); err != nil {
			t.Fatal(err)
		}

		// As if the relay had died before it stored any progress.
		rs := store.(relay.Replays)
		rec, err := rs.LoadReplay(t.Context(), r.ReplayID)
		if err != nil {
			t.Fatal(err)
		}
		rec.State, rec.Cursor, rec.EventsDone, rec.Deliveries, rec.FinishedAt = relay.ReplayRunning, "", 0, 0, time.Time{}
		if err := rs.UpdateReplay(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
		h = startRelayOn(t, set, store)
		again := h.waitReplay(t, r.ReplayID, relay.ReplayDone)
		if again.EventsDone != n || again.Deliveries != 2*n {
			t.Errorf("the resumed replay ended as %+v, want %d events and the %d deliveries it had made", again, n, 2*n)
		}
		time.Sleep(300 * time.Millisecond) // room for a second send, if there were one
		for _, s := range []*sink{old, fresh} {
			if got := s.count(); got != 2*n {
				t.Errorf("%s received %d requests, want %d: each event once and once replayed", s.name, got, 2*n)
			}
		}
	})
}
