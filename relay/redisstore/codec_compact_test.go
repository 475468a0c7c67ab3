package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// The compact record rebuilds the dedup key and the header values it
// stores short, in Go and in the scripts' eventHead alike, with and
// without a trace before the ids.
func TestCodecCompact(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	long := "video_generate:" + string(make([]byte, 300)) + ":completed"
	cases := []struct {
		name                string
		ev                  relay.Event
		wantDedup, wantMark string
	}{
		{"job", relay.Event{Task: "video_generate", Status: "completed", JobID: "run_1", DedupKey: "video_generate:run_1:completed"}, "\x00", ""},
		{"avatar and look", relay.Event{Task: "avatar_create", Status: "completed", AvatarID: "avtr_1", LookID: "look_1", DedupKey: "avatar_create:avtr_1:look_1:completed"}, "\x00", ""},
		{"other", relay.Event{Task: "other", Status: "s", DedupKey: "other:sha256:ab"}, "other:sha256:ab", ""},
		{"ids not in the key", relay.Event{Task: "video_generate", Status: "completed", JobID: "run_2", DedupKey: "video_generate:run_1:completed"}, "video_generate:run_1:completed", ""},
		{"starts with 0", relay.Event{Task: "t", Status: "s", DedupKey: "\x00k"}, "\x01\x00k", ""},
		{"starts with 1", relay.Event{Task: "t", Status: "s", DedupKey: "\x01k"}, "\x01\x01k", ""},
		{"empty", relay.Event{Task: "t", Status: "s"}, "", ""},
		{"long", relay.Event{Task: "video_generate", Status: "completed", JobID: string(make([]byte, 300)), DedupKey: long}, "\x00", relay.MarkKey(long)},
	}
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t, false).Addr})
	defer rdb.Close()
	head := redis.NewScript(luaEventHead + `return {eventHead(ARGV[1])}`)
	for _, tc := range cases {
		for _, trace := range []string{"", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
			ev := tc.ev
			ev.ID, ev.Source, ev.ReceivedAt, ev.Trace, ev.Payload = relay.NewEventID(at), "hoox", at, trace, []byte(`{}`)
			ev.Headers = map[string]string{"Content-Type": "application/json", "User-Agent": "", "X-Other": "application/json; charset=utf-8"}
			if got := dedupField(&ev); got != tc.wantDedup {
				t.Errorf("%s: dedupField = %q, want %q", tc.name, got, tc.wantDedup)
			}
			rec, err := encodeEvent(&ev)
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeEvent(ev.ID, rec, "", true)
			if err != nil || got.DedupKey != ev.DedupKey || fmt.Sprint(got.Headers) != fmt.Sprint(ev.Headers) || got.Trace != trace || string(got.Payload) != "{}" {
				t.Errorf("%s: decodeEvent(encodeEvent(%+v)) = %+v, %v", tc.name, ev, got, err)
			}
			mark := relay.MarkKey(ev.DedupKey)
			res, err := head.Run(t.Context(), rdb, nil, rec).StringSlice()
			if err != nil || len(res) != 4 || res[0] != "hoox" || res[1] != ev.Task || res[2] != ev.Status || res[3] != mark {
				t.Errorf("%s: eventHead = %q, %v; want hoox, %s, %s, %q", tc.name, res, err, ev.Task, ev.Status, mark)
			}
			// The start of the record (the dedup scan reads no more):
			// nothing until the head is whole, then the same.
			whole := false
			for n := range len(rec) {
				part, err := head.Run(t.Context(), rdb, nil, rec[:n]).StringSlice()
				switch {
				case err != nil || len(part) != 0 && len(part) != 4:
					t.Fatalf("%s: eventHead of the first %d bytes = %q, %v", tc.name, n, part, err)
				case len(part) == 4 && fmt.Sprint(part) != fmt.Sprint(res):
					t.Errorf("%s: eventHead of the first %d bytes = %q, want %q or nothing", tc.name, n, part, res)
				case len(part) == 0 && whole:
					t.Errorf("%s: eventHead of the first %d bytes is nothing, after a whole head", tc.name, n)
				}
				whole = whole || len(part) == 4
			}
		}
	}
	if _, err := decodeEvent("e", []byte{eventCompactVersion, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9}, "", true); err == nil {
		t.Error("decodeEvent of a record with an unknown header value code succeeded")
	}
}
