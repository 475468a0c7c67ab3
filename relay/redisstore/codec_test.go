package redisstore

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)
	ev := &relay.Event{ID: relay.NewEventID(at), Source: "hoox", Task: "t", Status: "s", DedupKey: "k", ReceivedAt: at, RemoteAddr: "10.0.0.1",
		Headers: map[string]string{"User-Agent": "Hoox/1.0", "Content-Type": "application/json", "X-Other": "o"}, Targets: []string{"a", "b"}, Payload: []byte(`{"x":1}`)}
	rec, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(ev.ID, rec, "a\x00b", true)
	if err != nil || got.ID != ev.ID || got.Source != "hoox" || got.Task != "t" || got.Status != "s" || got.DedupKey != "k" || got.RemoteAddr != "10.0.0.1" ||
		!slices.Equal(got.Targets, ev.Targets) || got.Headers["User-Agent"] != "Hoox/1.0" || len(got.Headers) != 3 || got.Headers["X-Other"] != "o" || got.Headers["Content-Type"] != "application/json" || !got.ReceivedAt.Equal(at) || string(got.Payload) != `{"x":1}` {
		t.Errorf("decodeEvent(encodeEvent(%+v)) = %+v, %v", ev, got, err)
	}
	if got, err := decodeEvent(ev.ID, rec, "", false); err != nil || got.Payload != nil || len(got.Targets) != 0 {
		t.Errorf("decodeEvent without payload and targets = %+v, %v", got, err)
	}
	if _, err := encodeEvent(&relay.Event{ID: ev.ID, Targets: []string{"a\x00b"}}); err == nil {
		t.Error("encodeEvent of a target name with a NUL byte succeeded")
	}
	for state, code := range stateCodes {
		d := relay.NewDelivery(ev, "a")
		d.State, d.Attempts, d.LastStatus, d.LastError, d.BudgetAttempts = state, 3, 503, "busy", 1
		d.UpdatedAt, d.BudgetSince = at.Add(time.Second), at.Add(-time.Hour) // after and before the event's epoch
		rec, err := encodeDelivery(&d)
		if err != nil {
			t.Fatal(err)
		}
		if rec[1] != code {
			t.Errorf("a %s delivery record has %q at the place of the state, want %q: the scripts read it there", state, rec[1], code)
		}
		if got, err := decodeDelivery(d.EventID, d.Target, rec); err != nil || !got.Equal(d) {
			t.Errorf("decodeDelivery(encodeDelivery(%+v)) = %+v, %v", d, got, err)
		}
	}
	as := []relay.Attempt{
		{Number: 1, StartedAt: at, Duration: time.Millisecond, Status: 503, Body: "busy"},
		{Number: 2, StartedAt: at.Add(time.Second), Duration: 2 * time.Second, Error: "connection refused"},
		{Number: 3, Status: 500, Body: strings.Repeat("x", relay.MaxAttemptBody)}, // a length of two bytes
		{Number: 4, Status: 200, Waited: relay.WaitingBreakerOpen, WaitedFor: 30 * time.Second, Replay: "rpl_1"},
		{Number: 5, Status: 200, Replay: "rpl_2"},
	}
	var hist []byte
	for i := range as {
		hist = append(hist, encodeAttempt(ev.ID, &as[i])...)
	}
	if got, err := decodeHistory(ev.ID, hist); err != nil || len(got) != 5 || got[2] != as[2] || got[3] != as[3] || got[4] != as[4] || !got[0].StartedAt.Equal(at) || got[0].Body != "busy" || got[1].Error != "connection refused" || got[1].Duration != 2*time.Second {
		t.Errorf("decodeHistory of five attempts = %+v, %v", got, err)
	}
	if _, err := decodeHistory(ev.ID, hist[:len(hist)-1]); err == nil {
		t.Error("decodeHistory of a cut record succeeded")
	}
}

// Records of an unknown layout, the JSON of the first layout among them,
// are an error that names the version.
func TestCodecRefusesUnknownVersions(t *testing.T) {
	for name, decode := range map[string]func([]byte) error{
		"event":    func(b []byte) error { _, err := decodeEvent("e", b, "", true); return err },
		"delivery": func(b []byte) error { _, err := decodeDelivery("e", "a", b); return err },
	} {
		for _, rec := range [][]byte{[]byte(`{"state":"pending"}`), append([]byte{1, 'p'}, `{"state":"pending"}`...)} {
			err := decode(rec)
			if err == nil || !strings.Contains(err.Error(), "layout version") || !strings.Contains(err.Error(), "another version of hooxrelay") {
				t.Errorf("decoding a %s record %q: %v, want an error naming the version", name, rec, err)
			}
		}
		if err := decode(nil); err == nil {
			t.Errorf("decoding an empty %s record succeeded", name)
		}
	}
}

// Event records keep the trace context and the payload's ids; those
// written before the trace was kept (layoutVersion) and before the ids were
// (eventTraceVersion) are still read.
func TestCodecEventTrace(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev := &relay.Event{ID: relay.NewEventID(at), Source: "hoox", Task: "t", Status: "s", DedupKey: "k", ReceivedAt: at, RemoteAddr: "10.0.0.1",
		Headers: map[string]string{"User-Agent": "Hoox/1.0"}, Trace: tp, Payload: []byte(`{"x":1}`), JobID: "run_1", AvatarID: "avtr_1", LookID: "look_1",
		Trail: relay.Trail{Verify: "hmac-sha256", Routes: []string{"videos", "all"}, Chosen: 1}}
	rec, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decodeEvent(ev.ID, rec, "", true); err != nil || got.Trace != tp || got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` || !got.ReceivedAt.Equal(at) ||
		got.JobID != "run_1" || got.AvatarID != "avtr_1" || got.LookID != "look_1" ||
		got.Trail.Verify != "hmac-sha256" || got.Trail.Chosen != 1 || len(got.Trail.Routes) != 2 || got.Trail.Routes[1] != "all" {
		t.Errorf("decodeEvent of an event with a trace = %+v, %v; want trace %s", got, err, tp)
	}
	// The same event as the previous layouts wrote it: no ids (three
	// empty strings, a byte each), and no trace byte either.
	ev.Trace, ev.JobID, ev.AvatarID, ev.LookID, ev.Trail = "", "", "", "", relay.Trail{}
	rec, _ = encodeEventAs(ev, eventTrailVersion)
	if got, err := decodeEvent(ev.ID, rec, "", true); err != nil || got.DedupKey != "k" || got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` {
		t.Errorf("decodeEvent of a record of version %d = %+v, %v", eventTrailVersion, got, err)
	}
	head := 1
	for range 6 { // source, task, status, dedup key, mark, remote address
		head += 1 + int(rec[head])
	}
	// The empty trail is three bytes more.
	v4 := append([]byte{eventIDsVersion}, rec[1:head+4]...)
	v4 = append(v4, rec[head+7:]...)
	if got, err := decodeEvent(ev.ID, v4, "", true); err != nil || got.Trail.Verify != "" || got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` || !got.ReceivedAt.Equal(at) {
		t.Errorf("decodeEvent of a record of version %d = %+v, %v; want the event without a trail", eventIDsVersion, got, err)
	}
	v3 := append([]byte{eventTraceVersion}, rec[1:head+1]...)
	v3 = append(v3, rec[head+7:]...)
	if got, err := decodeEvent(ev.ID, v3, "", true); err != nil || got.JobID != "" || got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` || !got.ReceivedAt.Equal(at) {
		t.Errorf("decodeEvent of a record of version %d = %+v, %v; want the event without ids", eventTraceVersion, got, err)
	}
	old := append([]byte{layoutVersion}, rec[1:head]...)
	old = append(old, rec[head+7:]...)
	if got, err := decodeEvent(ev.ID, old, "", true); err != nil || got.Trace != "" || got.RemoteAddr != "10.0.0.1" || got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` || !got.ReceivedAt.Equal(at) {
		t.Errorf("decodeEvent of a record of layout %d = %+v, %v; want the event without a trace", layoutVersion, got, err)
	}
}
