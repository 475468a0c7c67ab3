package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/rules"
)

// GET /api/v1/events/{event_id} has the trail of an accepted, a
// duplicated and an unrouted event: the routes that matched, the targets
// they chose, and the duplicates that came later.
func TestAdminEventTrail(t *testing.T) {
	set := settingsFor(t, target(newSink(t, "a", ok)), target(newSink(t, "b", ok)))
	set.Routes = routes(t, rules.Route{Name: "videos", Tasks: []string{"video_generate"}, Targets: []string{"a"}},
		rules.Route{Name: "completed", Statuses: []string{"completed"}, Targets: []string{"a", "b"}})
	h := startRelay(t, set, "")
	trail := func(id string) relay.TrailJSON {
		t.Helper()
		r := h.admin(t, "/api/v1/events/"+id)
		var ev relay.EventDetailJSON
		if r.status != http.StatusOK || json.Unmarshal(r.body, &ev) != nil {
			t.Fatalf("GET /api/v1/events/%s: %s", id, r)
		}
		return ev.Trail
	}
	accepted := h.send(t, videoBody("trail"))
	for range 2 {
		r := h.post(t, "/hooks/hoox", videoBody("trail"))
		if a := r.answer(t); a.Status != "duplicate" || a.EventID != accepted {
			t.Fatalf("a duplicate got %s, want duplicate of %s", r, accepted)
		}
	}
	unrouted := h.send(t, `{"task":"avatar_edit","avatar_id":"avtr_1","look_id":"look_1","status":"error"}`)

	got := trail(accepted)
	if got.Source != "hoox" || got.Verify == nil || got.Verify.Kind != "none" || got.Verify.Result != "not_checked" ||
		got.DedupKey != "video_generate:trail:completed" || !got.New || !slices.Equal(got.Routes, []string{"videos", "completed"}) ||
		!slices.Equal(got.Targets, []string{"a", "b"}) || got.Duplicates != 2 || got.LastDuplicateAt == nil {
		t.Errorf("trail of the accepted event = %+v, want source hoox, verify none not_checked, routes videos and completed, targets a and b, 2 duplicates with the last one's time", got)
	}
	got = trail(unrouted)
	if len(got.Routes) != 0 || len(got.Targets) != 0 || got.Duplicates != 0 || got.LastDuplicateAt != nil || got.Verify == nil {
		t.Errorf("trail of the unrouted event = %+v, want no routes, no targets, no duplicates", got)
	}
}

// An attempt made after a pause records that the delivery waited for it.
func TestAttemptWaitedForPause(t *testing.T) {
	a := newSink(t, "a", ok)
	h := startRelay(t, settingsFor(t, target(a)), "")
	if r := h.do(t, http.MethodPost, h.adminURL+"/api/v1/targets/a/pause", nil, nil); r.status != http.StatusOK {
		t.Fatalf("pause: %s", r)
	}
	id := h.send(t, videoBody("paused"))
	time.Sleep(200 * time.Millisecond) // the delivery waits, due
	if r := h.do(t, http.MethodPost, h.adminURL+"/api/v1/targets/a/resume", nil, nil); r.status != http.StatusOK {
		t.Fatalf("resume: %s", r)
	}
	a.waitCount(t, 1, 10*time.Second)
	storetest.Eventually(t, 5*time.Second, func() error {
		r := h.admin(t, "/api/v1/events/"+id)
		var ev relay.EventDetailJSON
		if err := json.Unmarshal(r.body, &ev); err != nil {
			return err
		}
		if len(ev.Deliveries) != 1 || len(ev.Deliveries[0].History) != 1 {
			return fmt.Errorf("event %s has deliveries %+v, want one attempt", id, ev.Deliveries)
		}
		if at := ev.Deliveries[0].History[0]; at.Waited != relay.WaitingPaused || at.WaitedMS < 100 {
			return fmt.Errorf("attempt = %+v, want waited paused for at least the 200 ms the target was paused (less a margin)", at)
		}
		return nil
	})
}
