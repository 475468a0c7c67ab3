package relay_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/hooxrelay/hooxrelay/rules"
)

// apiBody calls the admin API with a JSON body and the token, decodes the
// answer into out (when not nil) and returns the status and the raw answer.
func (h *relayHarness) apiBody(t testing.TB, method, path, body string, out any) (int, string) {
	t.Helper()
	r := h.do(t, method, h.adminURL+path, strings.NewReader(body), http.Header{"Authorization": {"Bearer " + adminToken}})
	if out != nil && r.status/100 == 2 {
		if err := json.Unmarshal(r.body, out); err != nil {
			t.Fatalf("%s %s: %s is not the expected JSON: %v", method, path, r, err)
		}
	}
	return r.status, string(r.body)
}

// waitReplay waits until replay id is in state and returns it.
func (h *relayHarness) waitReplay(t *testing.T, id string, state relay.ReplayState) relay.ReplayJSON {
	t.Helper()
	var got relay.ReplayJSON
	storetest.Eventually(t, 20*time.Second, func() error {
		if code := h.api(t, "GET", "/api/v1/replays/"+id, &got); code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/replays/%s: %d", id, code)
		}
		if got.State != state {
			return fmt.Errorf("replay %s is %+v, waiting for %s", id, got, state)
		}
		return nil
	})
	return got
}

// replaySettings route every event to old and held; fresh is a target
// that no route names yet, and held is paused by the test, so that its
// deliveries stay pending.
func replaySettings(t testing.TB, old, fresh, held *sink, routed ...string) relay.Settings {
	set := settingsFor(t, target(old), target(fresh), target(held))
	set.Routes = routes(t, rules.Route{Name: "all", Targets: routed})
	set.Server.AdminToken = adminToken
	return set
}

// A target added to a route gets every past event once through a replay,
// the targets that had them get them again, pending deliveries are left
// alone, and every replayed request carries Hooxrelay-Replay. The dry run
// counts what the replay then does.
func TestReplayAfterRouteGainedTarget(t *testing.T) {
	onStores(t, func(t *testing.T, open func() relay.Store) {
		old, fresh, held := newSink(t, "old", ok), newSink(t, "fresh", ok), newSink(t, "held", ok)
		h := startRelayOn(t, replaySettings(t, old, fresh, held, "old", "held"), open())
		if code := h.api(t, "POST", "/api/v1/targets/held/pause", nil); code != http.StatusOK {
			t.Fatalf("pause held: %d", code)
		}
		const n = 5
		ids := map[string]bool{}
		for i := range n {
			ids[h.send(t, videoBody(fmt.Sprintf("rp_%d", i)))] = true
		}
		h.waitDeliveries(t, "old", "delivered", n, 10*time.Second)
		if err := h.srv.Reload(t.Context(), replaySettings(t, old, fresh, held, "old", "fresh", "held"), "gained"); err != nil {
			t.Fatal(err)
		}

		var dry relay.ReplayDryRunJSON
		if code, body := h.apiBody(t, "POST", "/api/v1/replays", `{"since":"1h","dry_run":true}`, &dry); code != http.StatusOK || dry != (relay.ReplayDryRunJSON{Events: n, Deliveries: 2 * n}) {
			t.Fatalf("dry run = %d %s, want 200 with %d events and %d deliveries (old requeued, fresh created, held pending left alone)", code, body, n, 2*n)
		}
		if code, body := h.apiBody(t, "POST", "/api/v1/replays", `{"since":"1h","targets":["fresh"],"dry_run":true}`, &dry); code != http.StatusOK || dry.Deliveries != n {
			t.Errorf("dry run narrowed to fresh = %d %s, want %d deliveries", code, body, n)
		}
		if code, body := h.apiBody(t, "POST", "/api/v1/replays", `{"since":"1h","task":["avatar_create"],"dry_run":true}`, &dry); code != http.StatusOK || dry.Events != 0 {
			t.Errorf("dry run of another task = %d %s, want no events", code, body)
		}
		if old.count() != n || fresh.count() != 0 {
			t.Fatalf("after the dry runs old has %d requests, fresh %d; want %d and 0: a dry run sends nothing", old.count(), fresh.count(), n)
		}

		var started relay.ReplayJSON
		if code, body := h.apiBody(t, "POST", "/api/v1/replays", `{"since":"1h","rate":1000}`, &started); code != http.StatusAccepted || !strings.HasPrefix(started.ReplayID, "rpl_") || started.State != relay.ReplayRunning {
			t.Fatalf("POST /api/v1/replays = %d %s, want 202 with a running rpl_ id", code, body)
		}
		done := h.waitReplay(t, started.ReplayID, relay.ReplayDone)
		if done.EventsTotal != n || done.EventsDone != n || done.Deliveries != 2*n || done.FinishedAt == nil {
			t.Errorf("the replay ended as %+v, want %d events and %d deliveries", done, n, 2*n)
		}
		old.waitCount(t, 2*n, 10*time.Second)
		fresh.waitCount(t, n, 10*time.Second)
		for name, s := range map[string]*sink{"old": old, "fresh": fresh} {
			want := map[string]int{"old": 2, "fresh": 1}[name]
			for id := range ids {
				if got := s.ids()[id]; got != want {
					t.Errorf("%s received event %s %d times, want %d", name, id, got, want)
				}
			}
		}
		for i, r := range old.requests() {
			got := r.header.Get("Hooxrelay-Replay")
			if (i < n && got != "") || (i >= n && got != started.ReplayID) {
				t.Errorf("request %d to old has Hooxrelay-Replay %q; want none for the first %d, %s after", i, got, n, started.ReplayID)
			}
		}
		for _, r := range fresh.requests() {
			if got := r.header.Get("Hooxrelay-Replay"); got != started.ReplayID {
				t.Errorf("a request to fresh has Hooxrelay-Replay %q, want %s", got, started.ReplayID)
			}
		}
		// The attempts record the replay too.
		storetest.Eventually(t, 10*time.Second, func() error {
			for id := range ids {
				var ev relay.EventDetailJSON
				h.api(t, "GET", "/api/v1/events/"+id, &ev)
				for _, d := range ev.Deliveries {
					var got []string
					for _, a := range d.History {
						got = append(got, a.Replay)
					}
					want := map[string][]string{"old": {"", started.ReplayID}, "fresh": {started.ReplayID}, "held": nil}[d.Target]
					if !slices.Equal(got, want) {
						return fmt.Errorf("event %s to %s has attempts of replays %q, want %q", id, d.Target, got, want)
					}
				}
			}
			return nil
		})
		if held.count() != 0 {
			t.Errorf("held, paused, received %d requests", held.count())
		}
		var list struct{ Replays []relay.ReplayJSON }
		if code := h.api(t, "GET", "/api/v1/replays", &list); code != http.StatusOK || len(list.Replays) != 1 || list.Replays[0].ReplayID != started.ReplayID {
			t.Errorf("GET /api/v1/replays = %d %+v, want the one replay", code, list)
		}
		var d relay.DeliveryJSON
		anyID := ""
		for id := range ids {
			anyID = id
		}
		// A delivered delivery retried is a replay of one event to it.
		storetest.Eventually(t, 10*time.Second, func() error {
			d, _, err := h.store.LoadDelivery(t.Context(), anyID+":old")
			if err != nil || d.State != relay.Delivered || d.Attempts != 2 {
				return fmt.Errorf("delivery %s:old is %+v, %v; waiting for its second delivery", anyID, d, err)
			}
			return nil
		})
		if code, body := h.apiBody(t, "POST", "/api/v1/deliveries/"+anyID+":old/retry", "", &d); code != http.StatusAccepted || !strings.HasPrefix(d.ReplayID, "rpl_") || d.ReplayID == started.ReplayID {
			t.Fatalf("retry of a delivered delivery = %d %s, want 202 with a new replay id", code, body)
		}
		old.waitCount(t, 2*n+1, 10*time.Second)
		if last := old.requests()[2*n]; last.id() != anyID || last.header.Get("Hooxrelay-Replay") != d.ReplayID {
			t.Errorf("the resend went out as %s with Hooxrelay-Replay %q, want %s with %s", last.id(), last.header.Get("Hooxrelay-Replay"), anyID, d.ReplayID)
		}
		if one := h.waitReplay(t, d.ReplayID, relay.ReplayDone); one.EventsDone != 1 || one.Deliveries != 1 || one.EventID != anyID {
			t.Errorf("the resend's replay is %+v, want 1 event, 1 delivery", one)
		}
	})
}

// POST /api/v1/replays refuses a bad request with a 400 that names what is
// wrong.
func TestReplayRequestErrors(t *testing.T) {
	old, fresh, held := newSink(t, "old", ok), newSink(t, "fresh", ok), newSink(t, "held", ok)
	h := startRelay(t, replaySettings(t, old, fresh, held, "old"), "")
	for body, want := range map[string]string{
		`{}`:                              "since is required",
		`{"since":"yesterday"}`:           `since: "yesterday" is neither an RFC 3339 time`,
		`{"since":"-2h"}`:                 "since: \"-2h\": a duration counts back from now and must not be negative",
		`{"since":"2h","until":"x"}`:      `until: "x" is neither`,
		`{"since":"1h","until":"2h"}`:     "must be after since",
		`{"since":"2h","targets":["no"]}`: `targets: "no" is not a target`,
		`{"since":"2h","rate":0}`:         "rate must be",
		`{"since":"2h","rate":1e9}`:       "rate must be",
		`{"since":"2h","task":"x"}`:       "task must be an array",
		`{"since":"2h","task":[""]}`:      "task must not hold an empty string",
		`{"since":"2h","speed":3}`:        `unknown field "speed"`,
		`[1]`:                             "must be a JSON object",
	} {
		code, raw := h.apiBody(t, "POST", "/api/v1/replays", body, nil)
		var got relay.ErrorJSON
		json.Unmarshal([]byte(raw), &got)
		if code != http.StatusBadRequest || !strings.Contains(got.Message, want) {
			t.Errorf("POST /api/v1/replays %s = %d %s, want 400 saying %q", body, code, got, want)
		}
	}
	if code := h.api(t, "GET", "/api/v1/replays/rpl_nope", nil); code != http.StatusNotFound {
		t.Errorf("GET of an unknown replay = %d, want 404", code)
	}
}
