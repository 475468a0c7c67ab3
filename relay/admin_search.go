package relay

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// eventParams are the query parameters of GET /api/v1/events.
var eventParams = []string{"task", "status", "job_id", "avatar_id", "look_id", "dedup_key", "since", "until", "limit", "before"}

// eventFilterParams reads the filter of GET /api/v1/events, or answers
// 400 naming the parameter that is wrong and returns false.
func eventFilterParams(w http.ResponseWriter, r *http.Request, now time.Time) (EventFilter, bool) {
	limit, ok := limitParam(w, r)
	if !ok {
		return EventFilter{}, false
	}
	q := r.URL.Query()
	f := EventFilter{Task: q.Get("task"), Status: q.Get("status"), JobID: q.Get("job_id"), AvatarID: q.Get("avatar_id"),
		LookID: q.Get("look_id"), DedupKey: q.Get("dedup_key"), Before: q.Get("before"), Limit: limit}
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		raw := q.Get(p.name)
		if raw == "" {
			continue
		}
		t, err := ParseTimeBack(raw, now)
		if err != nil {
			apiError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("%s: %v", p.name, err))
			return EventFilter{}, false
		}
		*p.t = t
	}
	return f, true
}

// ParseTimeBack reads a time as the admin API and the CLI take it: an RFC
// 3339 time, or a Go duration (2h, 90m) back from now.
func ParseTimeBack(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2024-01-15T10:30:00Z) nor a duration back from now (2h, 90m)", s)
	}
	if d < 0 || strings.HasPrefix(s, "-") {
		return time.Time{}, fmt.Errorf("%q: a duration counts back from now and must not be negative", s)
	}
	return now.Add(-d), nil
}
