package redisstore

import (
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// The dedup scan looks where the search index keeps an event of the key:
// under its job id or look id when the key is made of them, else under the
// key itself; back to the first millisecond within the ttl, and from the
// epoch when the ttl reaches before it.
func TestDedupArgs(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	ev := func(key, job, look string) *relay.Event {
		return &relay.Event{ID: relay.NewEventID(at), Source: "hoox", DedupKey: key, JobID: job, LookID: look, ReceivedAt: at}
	}
	long := string(make([]byte, 600))
	cases := []struct {
		name       string
		ev         *relay.Event
		wantPrefix string
	}{
		{"job key", ev("video_generate:run_1:completed", "run_1", ""), "j\x00run_1\x00"},
		{"look key", ev("avatar_edit:avtr_1:look_2:error", "", "look_2"), "l\x00look_2\x00"},
		{"a job id with a colon", ev("video_generate:run:1:completed", "run:1", ""), "k\x00video_generate:run:1:completed\x00"},
		{"another key", ev("custom", "run_1", ""), "k\x00custom\x00"},
		{"a key over 512 bytes", ev(long, "", ""), "k\x00" + relay.MarkKey(long) + "\x00"},
	}
	for _, tc := range cases {
		prefix, oldest, want := dedupArgs(tc.ev, time.Hour)
		if prefix != tc.wantPrefix || want != "hoox\x00"+relay.MarkKey(tc.ev.DedupKey) {
			t.Errorf("%s: prefix %q, want %q; source and mark %q", tc.name, prefix, tc.wantPrefix, want)
		}
		// The oldest id within the ttl, to the millisecond.
		in := memberOf(relay.NewEventID(at.Add(-time.Hour + time.Millisecond)))[:10]
		out := memberOf(relay.NewEventID(at.Add(-time.Hour)))[:10]
		if oldest != in || out >= oldest {
			t.Errorf("%s: oldest %q, want %q (and %q before it)", tc.name, oldest, in, out)
		}
	}
	if _, oldest, _ := dedupArgs(ev("k", "", ""), 100*365*24*time.Hour); oldest != "0000000000" {
		t.Errorf("oldest for a ttl reaching before 1970 = %q, want the epoch", oldest)
	}
	if _, oldest, _ := dedupArgs(ev("k", "", ""), 0); oldest != memberOf(relay.NewEventID(at))[:10] {
		t.Errorf("oldest for no ttl = %q, want the event's own millisecond", oldest)
	}
}
