package relay_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/rules"
)

// hooxrelay_oldest_pending_age_seconds grows while a paused target's
// delivery waits, and drops to 0 once it is delivered; a target with
// nothing pending shows 0.
func TestOldestPendingAge(t *testing.T) {
	held, idle := newSink(t, "held", ok), newSink(t, "idle", ok)
	set := settingsFor(t, target(held), target(idle))
	set.Routes = routes(t, rules.Route{Name: "only-held", Targets: []string{"held"}})
	h := startRelay(t, set, "")
	age := func(target string) float64 {
		t.Helper()
		v, found := h.metrics(t).value("hooxrelay_oldest_pending_age_seconds", map[string]string{"target": target})
		if !found {
			t.Fatalf("hooxrelay_oldest_pending_age_seconds{target=%q} is not exported", target)
		}
		return v
	}
	if a, b := age("held"), age("idle"); a != 0 || b != 0 {
		t.Fatalf("oldest pending age with nothing pending = held %v, idle %v; want 0 and 0", a, b)
	}

	if r := h.do(t, http.MethodPost, h.adminURL+"/api/v1/targets/held/pause", nil, nil); r.status != http.StatusOK {
		t.Fatalf("pause held: got %s", r)
	}
	h.send(t, videoBody("waits"))
	first := age("held")
	time.Sleep(20 * time.Millisecond) // let the wait grow; nothing is timed
	second := age("held")
	if first <= 0 || second <= first {
		t.Errorf("oldest pending age of a paused target: %v then %v, want positive and growing", first, second)
	}
	if v := age("idle"); v != 0 {
		t.Errorf("oldest pending age of a target with nothing pending = %v, want 0", v)
	}

	if r := h.do(t, http.MethodPost, h.adminURL+"/api/v1/targets/held/resume", nil, nil); r.status != http.StatusOK {
		t.Fatalf("resume held: got %s", r)
	}
	held.waitCount(t, 1, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for age("held") != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("oldest pending age = %v 5s after the delivery went out, want 0", age("held"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
