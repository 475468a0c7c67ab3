package pebblestore

import (
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Event records keep the trace context, the payload's ids and the trail;
// records of earlier versions, which also held the event id (version 1
// before traces were kept, 2 before the ids, 3 before the trail, 4 until
// the id was left to the key), are still read.
func TestEventRecordTrace(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev := &relay.Event{ID: relay.NewEventID(at), Source: "hoox", Task: "t", Status: "s", DedupKey: "k", ReceivedAt: at, RemoteAddr: "10.0.0.1",
		Headers: map[string]string{"User-Agent": "Hoox/1.0"}, Targets: []string{"a"}, Trace: tp, Payload: []byte(`{"x":1}`),
		JobID: "run_1", AvatarID: "avtr_1", LookID: "look_1", Trail: relay.Trail{Verify: "hmac-sha256", Routes: []string{"videos", "all"}, Chosen: 1}}
	rec := appendEvent(nil, ev)
	if rec[0] != eventVersion {
		t.Fatalf("an event record starts with %d, want %d", rec[0], eventVersion)
	}
	if got, err := decodeEvent(ev.ID, rec, true); err != nil || got.ID != ev.ID || got.Trace != tp || got.RemoteAddr != "10.0.0.1" || string(got.Payload) != `{"x":1}` || got.Targets[0] != "a" ||
		got.JobID != "run_1" || got.AvatarID != "avtr_1" || got.LookID != "look_1" ||
		got.Trail.Verify != "hmac-sha256" || got.Trail.Chosen != 1 || len(got.Trail.Routes) != 2 || got.Trail.Routes[1] != "all" {
		t.Errorf("decodeEvent of an event with a trace = %+v, %v; want trace %s", got, err, tp)
	}
	v4 := append([]byte{eventTrailVersion}, putString(nil, ev.ID)...)
	v4 = append(v4, rec[1:]...)
	if got, err := decodeEvent(ev.ID, v4, true); err != nil || got.ID != ev.ID || got.Trace != tp || got.Source != "hoox" || got.LookID != "look_1" ||
		got.Trail.Verify != "hmac-sha256" || string(got.Payload) != `{"x":1}` || got.Targets[0] != "a" {
		t.Errorf("decodeEvent of a version 4 record = %+v, %v", got, err)
	}
	ev.Trace, ev.JobID, ev.AvatarID, ev.LookID, ev.Trail = "", "", "", "", relay.Trail{}
	rec = append([]byte{eventTrailVersion}, putString(nil, ev.ID)...) // version 4's layout
	rec = append(rec, appendEvent(nil, ev)[1:]...)
	head := 1
	for range 6 { // id, source, task, status, dedup key, remote address
		head += 1 + int(rec[head])
	}
	// The empty trace is one byte, the three empty ids three more, the
	// empty trail three more.
	v3 := append([]byte{eventIDsVersion}, rec[1:head+4]...)
	v3 = append(v3, rec[head+7:]...)
	if got, err := decodeEvent(ev.ID, v3, true); err != nil || got.ID != ev.ID || got.Trail.Verify != "" || !got.ReceivedAt.Equal(at) ||
		string(got.Payload) != `{"x":1}` || got.Targets[0] != "a" {
		t.Errorf("decodeEvent of a version 3 record = %+v, %v; want the event without a trail", got, err)
	}
	v2 := append([]byte{eventTraceVersion}, rec[1:head+1]...)
	v2 = append(v2, rec[head+7:]...)
	if got, err := decodeEvent(ev.ID, v2, true); err != nil || got.ID != ev.ID || got.JobID != "" || !got.ReceivedAt.Equal(at) ||
		got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` || got.Targets[0] != "a" {
		t.Errorf("decodeEvent of a version 2 record = %+v, %v; want the event without ids", got, err)
	}
	old := append([]byte{recordVersion}, rec[1:head]...)
	old = append(old, rec[head+7:]...)
	if got, err := decodeEvent(ev.ID, old, true); err != nil || got.Trace != "" || got.ID != ev.ID || got.RemoteAddr != "10.0.0.1" || !got.ReceivedAt.Equal(at) ||
		got.Headers["User-Agent"] != "Hoox/1.0" || string(got.Payload) != `{"x":1}` || got.Targets[0] != "a" {
		t.Errorf("decodeEvent of a version 1 record = %+v, %v; want the event without a trace", got, err)
	}
	if _, err := decodeEvent(ev.ID, append([]byte{9}, rec[1:]...), true); err == nil {
		t.Error("decodeEvent of a version 9 record succeeded")
	}
}

// Attempt records keep the wait before the attempt and the replay;
// version 1 records, written before, are still read.
func TestAttemptRecord(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	a := relay.Attempt{Number: 2, StartedAt: at, Duration: time.Millisecond, Status: 200, Body: "ok",
		Waited: relay.WaitingBreakerOpen, WaitedFor: 30 * time.Second, Replay: "rpl_1"}
	rec := appendAttempt(nil, &a)
	if got, err := decodeAttempt(rec); err != nil || got != a {
		t.Errorf("decodeAttempt(appendAttempt(%+v)) = %+v, %v", a, got, err)
	}
	a.Waited, a.WaitedFor, a.Replay = "", 0, ""
	rec = appendAttempt(nil, &a)
	old := append([]byte{recordVersion}, rec[1:len(rec)-3]...) // without the three empty fields
	if got, err := decodeAttempt(old); err != nil || got != a {
		t.Errorf("decodeAttempt of a version 1 record = %+v, %v; want %+v", got, err, a)
	}
	if _, err := decodeAttempt(append([]byte{9}, rec[1:]...)); err == nil {
		t.Error("decodeAttempt of a version 9 record succeeded")
	}
}
