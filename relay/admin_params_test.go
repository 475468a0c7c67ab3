package relay_test

import (
	"net/http"
	"strings"
	"testing"
)

// An admin endpoint refuses a query parameter it does not take, naming
// it, rather than answering as if it were not there.
func TestAdminUnknownParameter(t *testing.T) {
	h := startRelay(t, settingsFor(t, target(newSink(t, "a", ok))), "")
	h.send(t, videoBody("listed"))
	for _, tc := range []struct{ path, param string }{
		{"/api/v1/events?jobid=listed", "jobid"},
		{"/api/v1/events?task=video_generate&avatar=x", "avatar"},
		{"/api/v1/deliveries?state=pending&evnt=1", "evnt"},
		{"/api/v1/rejected?limit=5&since=2h", "since"},
		{"/api/v1/targets?name=a", "name"},
		{"/api/v1/status?verbose", "verbose"},
	} {
		r := h.admin(t, tc.path)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"invalid_request"`) ||
			!strings.Contains(string(r.body), `\"`+tc.param+`\"`) {
			t.Errorf("GET %s: got %s, want 400 invalid_request naming %q", tc.path, r, tc.param)
		}
	}
	for _, path := range []string{"/api/v1/events?task=video_generate&limit=1", "/api/v1/deliveries?target=a&state=delivered&before=x", "/api/v1/rejected?limit=1"} {
		if r := h.admin(t, path); r.status != http.StatusOK {
			t.Errorf("GET %s: got %s, want 200", path, r)
		}
	}
}
