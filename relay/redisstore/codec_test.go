package redisstore

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	ev := &relay.Event{ID: relay.NewEventID(at), Source: "hoox", Task: "t", Status: "s", DedupKey: "k", ReceivedAt: at,
		Headers: map[string]string{"User-Agent": "Hoox/1.0"}, Targets: []string{"a", "b"}}
	meta, targets, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(meta), "targets") {
		t.Errorf("event meta %s holds the targets, which are kept beside it", meta)
	}
	if got, err := decodeEvent(meta, targets); err != nil || got.ID != ev.ID || !slices.Equal(got.Targets, ev.Targets) || got.Headers["User-Agent"] != "Hoox/1.0" || !got.ReceivedAt.Equal(at) {
		t.Errorf("decodeEvent(encodeEvent(%+v)) = %+v, %v", ev, got, err)
	}
	if _, _, err := encodeEvent(&relay.Event{ID: ev.ID, Targets: []string{"a\x00b"}}); err == nil {
		t.Error("encodeEvent of a target name with a NUL byte succeeded")
	}
	unrouted, targets, _ := encodeEvent(&relay.Event{ID: ev.ID})
	if got, err := decodeEvent(unrouted, targets); err != nil || len(got.Targets) != 0 {
		t.Errorf("an event without targets comes back with %q, %v", got.Targets, err)
	}
	for state, code := range stateCodes {
		d := relay.NewDelivery(ev, "a")
		d.State = state
		rec, err := encodeDelivery(&d)
		if err != nil {
			t.Fatal(err)
		}
		if rec[1] != code {
			t.Errorf("a %s delivery record has %q at the place of the state, want %q: the scripts read it there", state, rec[1], code)
		}
		if got, err := decodeDelivery(rec); err != nil || !got.Equal(d) {
			t.Errorf("decodeDelivery(encodeDelivery(%+v)) = %+v, %v", d, got, err)
		}
	}
	a := relay.Attempt{Number: 2, StartedAt: at, Duration: time.Millisecond, Status: 503, Body: "busy"}
	rec, err := encodeAttempt(&a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeAttempt(rec); err != nil || got != a {
		t.Errorf("decodeAttempt(encodeAttempt(%+v)) = %+v, %v", a, got, err)
	}
}

// Records of an unknown layout, the JSON of earlier versions among them,
// are an error that names the version.
func TestCodecRefusesUnknownVersions(t *testing.T) {
	for name, decode := range map[string]func([]byte) error{
		"event":    func(b []byte) error { _, err := decodeEvent(b, ""); return err },
		"delivery": func(b []byte) error { _, err := decodeDelivery(b); return err },
		"attempt":  func(b []byte) error { _, err := decodeAttempt(b); return err },
	} {
		err := decode([]byte(`{"state":"pending"}`))
		if err == nil || !strings.Contains(err.Error(), "version 123") || !strings.Contains(err.Error(), "another version of hooxrelay") {
			t.Errorf("decoding a JSON %s record: %v, want an error naming the version", name, err)
		}
		if err := decode(nil); err == nil {
			t.Errorf("decoding an empty %s record succeeded", name)
		}
	}
}
