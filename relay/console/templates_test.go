package console

import (
	"bytes"
	"html"
	"strings"
	"testing"
	"time"
)

// hostile would run or inject markup if a page printed it unescaped.
const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

// The fields the relay's tests cannot fill with markup for real (a
// replay's error is the store's or the engine's text) render as text: each
// page of the console, given hostile text in every string it shows.
func TestTemplatesEscapeEveryField(t *testing.T) {
	pages := parsePages()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rp := Replay{ID: hostile, State: hostile, EventsTotal: 3, EventsDone: 1, Since: at, Until: at, Tasks: []string{hostile},
		Statuses: []string{hostile}, Targets: []string{hostile}, Rate: 5, CreatedAt: at, Error: hostile}
	resend := rp
	resend.EventID = hostile
	ev := &EventDetail{Event: Event{ID: hostile, Source: hostile, Task: hostile, Status: hostile, DedupKey: hostile, JobID: hostile,
		AvatarID: hostile, LookID: hostile, ReceivedAt: at},
		RemoteAddr: hostile, Headers: map[string]string{hostile: hostile}, Payload: []byte(hostile),
		Trail: Trail{Kept: true, Verify: hostile, Verified: hostile, Routes: []string{hostile, hostile}, Targets: []string{hostile},
			AddedTargets: []string{hostile}, Duplicates: 2, LastDuplicate: at},
		Deliveries: []Delivery{{ID: hostile, EventID: hostile, Target: hostile, State: "delivered", Attempts: 1, LastError: hostile,
			Replay: hostile, History: []Attempt{{Number: 1, StartedAt: at, Status: 200, Error: hostile, Body: hostile,
				Waited: hostile, WaitedFor: time.Second, Replay: hostile}}}}}
	for _, tc := range []struct {
		page, block string
		data        any
		min         int // escaped copies: one for each place it shows
	}{
		{"replays", "layout.html", replaysData{Form: replayFormData{ReplayForm: ReplayForm{Since: hostile, Until: hostile, Rate: hostile},
			Task: hostile, Status: hostile, Choices: []targetChoice{{Name: hostile, Checked: true}}},
			Plan:    &ReplayPlan{Since: at, Until: at, Events: 1, Deliveries: 1},
			Confirm: ReplayForm{Since: hostile, Until: hostile, Tasks: []string{hostile}, Statuses: []string{hostile}, Targets: []string{hostile}, Rate: hostile},
			List:    replayList{Replays: []Replay{rp, resend}, Running: true}}, 34},
		{"replays", "replay-list", replaysData{List: replayList{Replays: []Replay{rp, resend}}}, 16},
		{"event", "layout.html", eventData{EventDetail: ev, Payload: hostile}, 31},
		{"events", "layout.html", eventsData{Filter: map[string]string{"job_id": hostile, "dedup_key": hostile}, Any: true,
			Events: []Event{ev.Event}}, 10},
	} {
		var buf bytes.Buffer
		err := pages[tc.page].ExecuteTemplate(&buf, tc.block, page{Title: hostile, CSRF: hostile, Flash: hostile, Error: hostile, Data: tc.data})
		if err != nil {
			t.Fatalf("%s %s: %v", tc.page, tc.block, err)
		}
		out := buf.String()
		for _, bad := range []string{"<script>alert", "<img src=x", "alert(2)>"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s %s holds %q unescaped:\n%s", tc.page, tc.block, bad, out)
			}
		}
		if n := strings.Count(out, html.EscapeString(hostile)); n < tc.min {
			t.Errorf("%s %s shows the hostile text escaped %d times, want at least %d:\n%s", tc.page, tc.block, n, tc.min, out)
		}
	}
}
