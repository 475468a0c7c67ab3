package redisstore

import (
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	ev := &relay.Event{ID: relay.NewEventID(at), Source: "hoox", Task: "t", Status: "s", DedupKey: "k", ReceivedAt: at,
		Headers: map[string]string{"User-Agent": "Hoox/1.0"}, Targets: []string{"a", "b"}}
	meta, err := encodeEventMeta(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeEventMeta(meta); err != nil || got.ID != ev.ID || len(got.Targets) != 2 || got.Headers["User-Agent"] != "Hoox/1.0" {
		t.Errorf("decodeEventMeta(encodeEventMeta(%+v)) = %+v, %v", ev, got, err)
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
		"event":    func(b []byte) error { _, err := decodeEventMeta(b); return err },
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
