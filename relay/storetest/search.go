package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// searchEvents ingests the events of the search tests into s, the i-th
// received i seconds after Base, and returns their ids in that order.
func searchEvents(t *testing.T, s relay.Store) []string {
	t.Helper()
	type fields struct{ source, task, status, job, avatar, look string }
	var ids []string
	for i, f := range []fields{
		{"hoox", "video_generate", "completed", "run_A", "", ""},       // 0
		{"hoox", "avatar_edit", "completed", "", "avtr_1", "look_1"},   // 1
		{"hoox", "video_generate", "failed", "run_B", "", ""},          // 2
		{"hoox", "video_export", "completed", "run_A", "", ""},         // 3
		{"hoox", "avatar_edit", "failed", "", "avtr_1", "look_2"},      // 4
		{"hoox", "avatar_create", "completed", "", "avtr_2", "look_1"}, // 5
		{"hoox", "video_generate", "failed", "run_A", "", ""},          // 6
		{"hoox", "custom_task", "done", "", "", ""},                    // 7: an unknown task
		{"other", "video_generate", "failed", "run_A", "", ""},         // 8: 6's key, another source
	} {
		key := f.task + ":" + f.job + ":" + f.status
		switch {
		case f.avatar != "":
			key = f.task + ":" + f.avatar + ":" + f.look + ":" + f.status
		case f.job == "":
			key = f.task + ":sha256:0123abcd"
		}
		ev := Event(Base.Add(time.Duration(i)*time.Second), key, "a")
		ev.Source, ev.Task, ev.Status, ev.JobID, ev.AvatarID, ev.LookID = f.source, f.task, f.status, f.job, f.avatar, f.look
		if r := Ingest(t, s, ev, time.Hour); r.Duplicate {
			t.Fatalf("Ingest(event %d, key %s) was a duplicate of %s", i, key, r.EventID)
		}
		ids = append(ids, ev.ID)
	}
	return ids
}

// Events are found by each id of the payload, by the dedup key and by
// time, alone and combined, from the index of the most selective field
// (the others are checked on the events it yields).
func testSearch(t *testing.T, h Harness) {
	s := open(t, h)
	ids := searchEvents(t, s)
	at := func(i int) time.Time { return Base.Add(time.Duration(i) * time.Second) }
	pick := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, ids[i])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    relay.EventFilter
		want []string
	}{
		{"job", relay.EventFilter{JobID: "run_A"}, pick(8, 6, 3, 0)},
		{"job and status", relay.EventFilter{JobID: "run_A", Status: "completed"}, pick(3, 0)},
		{"job and task", relay.EventFilter{JobID: "run_A", Task: "video_generate"}, pick(8, 6, 0)},
		{"job unknown", relay.EventFilter{JobID: "run_Z"}, pick()},
		{"job, a prefix of another", relay.EventFilter{JobID: "run"}, pick()},
		{"avatar", relay.EventFilter{AvatarID: "avtr_1"}, pick(4, 1)},
		{"look", relay.EventFilter{LookID: "look_1"}, pick(5, 1)},
		{"avatar and look", relay.EventFilter{AvatarID: "avtr_1", LookID: "look_1"}, pick(1)},
		{"avatar and look of another avatar", relay.EventFilter{AvatarID: "avtr_2", LookID: "look_2"}, pick()},
		{"dedup key of a video task", relay.EventFilter{DedupKey: "video_generate:run_A:failed"}, pick(8, 6)},
		{"dedup key of an avatar task", relay.EventFilter{DedupKey: "avatar_edit:avtr_1:look_2:failed"}, pick(4)},
		{"dedup key of an unknown task", relay.EventFilter{DedupKey: "custom_task:sha256:0123abcd"}, pick(7)},
		{"dedup key that looks like a job's", relay.EventFilter{DedupKey: "video_export:run_A:failed"}, pick()},
		{"dedup key unknown", relay.EventFilter{DedupKey: "nothing"}, pick()},
		{"since and until", relay.EventFilter{Since: at(2), Until: at(5)}, pick(4, 3, 2)},
		{"since inside a millisecond", relay.EventFilter{Since: at(2).Add(500 * time.Microsecond), Until: at(5).Add(time.Microsecond)}, pick(5, 4, 3)},
		{"since only", relay.EventFilter{Since: at(7)}, pick(8, 7)},
		{"until only", relay.EventFilter{Until: at(2)}, pick(1, 0)},
		{"until before since", relay.EventFilter{Since: at(5), Until: at(2)}, pick()},
		{"job since", relay.EventFilter{JobID: "run_A", Since: at(1), Until: at(8)}, pick(6, 3)},
		{"task and time", relay.EventFilter{Task: "avatar_edit", Since: at(2)}, pick(4)},
		{"status and time, oldest first", relay.EventFilter{Status: "failed", Since: at(3), Oldest: true}, pick(4, 6, 8)},
		{"source's dedup key, oldest first", relay.EventFilter{DedupKey: "video_generate:run_A:failed", Oldest: true}, pick(6, 8)},
		{"every event, oldest first", relay.EventFilter{Oldest: true}, pick(0, 1, 2, 3, 4, 5, 6, 7, 8)},
	} {
		if got := eventIDs(listEvents(t, s, tc.f)); !slices.Equal(got, tc.want) {
			t.Errorf("Events(%s: %+v) = %v, want %v", tc.name, tc.f, got, tc.want)
		}
	}
	ev := listEvents(t, s, relay.EventFilter{DedupKey: "avatar_edit:avtr_1:look_1:completed"})
	if len(ev) != 1 || ev[0].Event.AvatarID != "avtr_1" || ev[0].Event.LookID != "look_1" || ev[0].Event.JobID != "" {
		t.Errorf("Events(avatar_edit's key) = %+v, want event 1 with its avatar and look ids", ev)
	}
	if ev := listEvents(t, s, relay.EventFilter{JobID: "run_B"}); len(ev) != 1 || ev[0].Event.JobID != "run_B" || len(ev[0].Deliveries) != 1 {
		t.Errorf("Events(job run_B) = %+v, want event 2 with its job id and delivery", ev)
	}
	// After a reopen the indexes are still there.
	s = reopen(t, h, s)
	if got := eventIDs(listEvents(t, s, relay.EventFilter{LookID: "look_2"})); !slices.Equal(got, pick(4)) {
		t.Errorf("after a reopen, Events(look look_2) = %v, want %v", got, pick(4))
	}
}

// Each index pages in both directions: Before is an event id, and names
// the events after it in the order asked for.
func testSearchPaging(t *testing.T, h Harness) {
	s := open(t, h)
	ids := searchEvents(t, s)
	at := func(i int) time.Time { return Base.Add(time.Duration(i) * time.Second) }
	for _, tc := range []struct {
		name  string
		f     relay.EventFilter
		pages [][]int
	}{
		{"every event", relay.EventFilter{}, [][]int{{8, 7}, {6, 5}, {4, 3}, {2, 1}, {0}}},
		{"every event, oldest first", relay.EventFilter{Oldest: true}, [][]int{{0, 1}, {2, 3}, {4, 5}, {6, 7}, {8}}},
		{"job", relay.EventFilter{JobID: "run_A"}, [][]int{{8, 6}, {3, 0}}},
		{"job, oldest first", relay.EventFilter{JobID: "run_A", Oldest: true}, [][]int{{0, 3}, {6, 8}}},
		{"time range", relay.EventFilter{Since: at(1), Until: at(7)}, [][]int{{6, 5}, {4, 3}, {2, 1}}},
		{"time range, oldest first", relay.EventFilter{Since: at(1), Until: at(7), Oldest: true}, [][]int{{1, 2}, {3, 4}, {5, 6}}},
		{"status", relay.EventFilter{Status: "completed"}, [][]int{{5, 3}, {1, 0}}},
		{"status across tasks, oldest first", relay.EventFilter{Status: "failed", Oldest: true}, [][]int{{2, 4}, {6, 8}}},
		{"task across statuses", relay.EventFilter{Task: "video_generate"}, [][]int{{8, 6}, {2, 0}}},
		{"task across statuses, oldest first", relay.EventFilter{Task: "video_generate", Oldest: true}, [][]int{{0, 2}, {6, 8}}},
		{"look, oldest first", relay.EventFilter{LookID: "look_1", Oldest: true}, [][]int{{1, 5}}},
		{"dedup key with a task", relay.EventFilter{DedupKey: "video_generate:run_A:failed", Task: "video_generate"}, [][]int{{8, 6}}},
	} {
		f := tc.f
		f.Limit = 2
		for n, page := range tc.pages {
			want := []string{}
			for _, i := range page {
				want = append(want, ids[i])
			}
			got := eventIDs(listEvents(t, s, f))
			if !slices.Equal(got, want) {
				t.Errorf("%s: page %d (before %q) = %v, want %v", tc.name, n+1, f.Before, got, want)
				break
			}
			f.Before = got[len(got)-1]
		}
		if got := eventIDs(listEvents(t, s, f)); len(got) != 0 {
			t.Errorf("%s: the page after the last (before %s) = %v, want none", tc.name, f.Before, got)
		}
	}
	// A filter that rejects most of what its index yields still fills
	// its page.
	f := relay.EventFilter{Status: "failed", Limit: 2}
	if got := eventIDs(listEvents(t, s, f)); !slices.Equal(got, []string{ids[8], ids[6]}) {
		t.Errorf("Events(status failed, limit 2) = %v, want %v", got, []string{ids[8], ids[6]})
	}
}
