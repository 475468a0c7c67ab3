package relay_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// A replay cancelled halfway stops: its state is cancelled and it handles
// no more events.
func TestReplayCancelledHalfway(t *testing.T) {
	onStores(t, func(t *testing.T, open func() relay.Store) {
		old, fresh, held := newSink(t, "old", ok), newSink(t, "fresh", ok), newSink(t, "held", ok)
		h := startRelayOn(t, replaySettings(t, old, fresh, held, "old"), open())
		const n = 20
		for i := range n {
			h.send(t, videoBody(fmt.Sprintf("cx_%d", i)))
		}
		h.waitDeliveries(t, "old", "delivered", n, 10*time.Second)
		var started relay.ReplayJSON
		if code, body := h.apiBody(t, "POST", "/api/v1/replays", `{"since":"1h","rate":4}`, &started); code != http.StatusAccepted {
			t.Fatalf("POST /api/v1/replays = %d %s", code, body)
		}
		storetest.Eventually(t, 20*time.Second, func() error {
			var r relay.ReplayJSON
			h.api(t, "GET", "/api/v1/replays/"+started.ReplayID, &r)
			if r.EventsDone < 4 {
				return fmt.Errorf("replay at %d events, waiting for 4", r.EventsDone)
			}
			return nil
		})
		var cancelled relay.ReplayJSON
		if code := h.api(t, "DELETE", "/api/v1/replays/"+started.ReplayID, &cancelled); code != http.StatusAccepted || cancelled.State != relay.ReplayCancelled {
			t.Fatalf("DELETE = %d %+v, want 202 cancelled", code, cancelled)
		}
		if cancelled.EventsDone >= n || cancelled.EventsTotal != n {
			t.Errorf("cancelled at %d of %d events, want fewer than %d of %d", cancelled.EventsDone, cancelled.EventsTotal, n, n)
		}
		time.Sleep(1500 * time.Millisecond) // more than a batch's pace: a replay still going would move
		after := h.waitReplay(t, started.ReplayID, relay.ReplayCancelled)
		if after.EventsDone != cancelled.EventsDone || after.Deliveries != cancelled.Deliveries {
			t.Errorf("after the cancel the replay moved from %+v to %+v", cancelled, after)
		}
		old.waitCount(t, n+cancelled.Deliveries, 10*time.Second)
		time.Sleep(200 * time.Millisecond)
		if got := old.count(); got != n+cancelled.Deliveries {
			t.Errorf("old received %d requests, want %d: the first %d and the %d the replay requeued before its cancel", got, n+cancelled.Deliveries, n, cancelled.Deliveries)
		}
		if code := h.api(t, "DELETE", "/api/v1/replays/rpl_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil); code != http.StatusNotFound {
			t.Errorf("DELETE of an unknown replay = %d, want 404", code)
		}
	})
}
