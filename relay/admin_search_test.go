package relay_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// GET /api/v1/events finds events by each id of the payload, the dedup
// key and the time they were received, and refuses a time it cannot read,
// naming the parameter.
func TestAdminEventSearch(t *testing.T) {
	h := startRelay(t, settingsFor(t, target(newSink(t, "a", ok))), "")
	start := time.Now()
	run1 := h.send(t, videoBody("run_1"))
	run2 := h.send(t, videoBody("run_2"))
	look1 := h.send(t, `{"task":"avatar_edit","avatar_id":"avtr_1","look_id":"look_1","status":"completed"}`)
	look2 := h.send(t, `{"task":"avatar_edit","avatar_id":"avtr_1","look_id":"look_2","status":"error"}`)
	other := h.send(t, `{"task":"avatar_create","avatar_id":"avtr_2","look_id":"look_1","status":"completed"}`)
	list := func(query string) []string {
		t.Helper()
		r := h.admin(t, "/api/v1/events?"+query)
		if r.status != http.StatusOK {
			t.Fatalf("GET /api/v1/events?%s: %s, want 200", query, r)
		}
		var ans struct{ Events []relay.EventJSON }
		if err := json.Unmarshal(r.body, &ans); err != nil {
			t.Fatal(err)
		}
		ids := []string{}
		for _, e := range ans.Events {
			ids = append(ids, e.EventID)
		}
		return ids
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"job_id=run_1", []string{run1}},
		{"avatar_id=avtr_1", []string{look2, look1}},
		{"look_id=look_1", []string{other, look1}},
		{"avatar_id=avtr_1&look_id=look_1", []string{look1}},
		{"dedup_key=" + url.QueryEscape("avatar_edit:avtr_1:look_2:error"), []string{look2}},
		{"dedup_key=" + url.QueryEscape("video_generate:run_2:completed") + "&task=video_generate", []string{run2}},
		{"since=1h&job_id=run_2", []string{run2}},
		{"since=" + url.QueryEscape(start.Add(-time.Second).Format(time.RFC3339Nano)) + "&limit=2", []string{other, look2}},
		{"until=1h", []string{}},
		{"until=" + url.QueryEscape(start.Add(-time.Second).Format(time.RFC3339)), []string{}},
		{"since=" + url.QueryEscape(time.Now().Add(time.Hour).Format(time.RFC3339)), []string{}},
	} {
		if got := list(tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("GET /api/v1/events?%s listed %v, want %v", tc.query, got, tc.want)
		}
	}
	r := h.admin(t, "/api/v1/events?job_id=run_1")
	if !strings.Contains(string(r.body), `"job_id":"run_1"`) {
		t.Errorf("GET /api/v1/events?job_id=run_1 = %s, want the event with its job_id", r.body)
	}
	r = h.admin(t, "/api/v1/events/"+look1)
	if !strings.Contains(string(r.body), `"avatar_id":"avtr_1"`) || !strings.Contains(string(r.body), `"look_id":"look_1"`) {
		t.Errorf("GET /api/v1/events/%s = %s, want its avatar_id and look_id", look1, r.body)
	}
	for _, tc := range []struct{ query, param string }{
		{"since=yesterday", "since"},
		{"until=2024-13-01T00:00:00Z", "until"},
		{"since=-2h", "since"},
		{"job_id=run_1&until=5", "until"},
	} {
		r := h.admin(t, "/api/v1/events?"+tc.query)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"invalid_request"`) || !strings.Contains(string(r.body), tc.param+":") {
			t.Errorf("GET /api/v1/events?%s: %s, want 400 invalid_request naming %s", tc.query, r, tc.param)
		}
	}
}
