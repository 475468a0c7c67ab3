package boltstore

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
)

func TestCodecRoundTrip(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	ev := &relay.Event{ID: relay.NewEventID(at), Source: "hoox", Task: "t", Status: "s", DedupKey: "k", ReceivedAt: at,
		Headers: map[string]string{"User-Agent": "Hoox/1.0"}, Targets: []string{"a", "b"}, Payload: []byte(" {\"é\":1}\n")}
	rec, err := encodeEvent(ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeEvent(rec, true)
	if err != nil || got.ID != ev.ID || string(got.Payload) != string(ev.Payload) || len(got.Targets) != 2 || !got.ReceivedAt.Equal(at) {
		t.Errorf("decodeEvent(encodeEvent(%+v)) = %+v, %v", ev, got, err)
	}

	d := relay.NewDelivery(ev, "a")
	d.State, d.Attempts, d.LastError = relay.Dead, 3, "HTTP 410"
	if rec, err = encodeDelivery(&d); err != nil {
		t.Fatal(err)
	}
	var back relay.Delivery
	if err := decodeDelivery(rec, &back); err != nil || !back.Equal(d) {
		t.Errorf("decodeDelivery(encodeDelivery(%+v)) = %+v, %v", d, back, err)
	}
	if state, due, err := deliveryHead(rec); err != nil || state != relay.Dead || !due.Equal(at) {
		t.Errorf("deliveryHead = %s %v %v, want dead, due %v", state, due, err, at)
	}

	a := relay.Attempt{Number: 2, StartedAt: at, Duration: time.Millisecond, Status: 503, Body: "busy"}
	if rec, err = encodeAttempt(&a); err != nil {
		t.Fatal(err)
	}
	if gotA, err := decodeAttempt(rec); err != nil || gotA != a {
		t.Errorf("decodeAttempt(encodeAttempt(%+v)) = %+v, %v", a, gotA, err)
	}
}

// A record of a layout version this build does not know is an error that
// says so, for every kind of record, and a store holding one does not open.
func TestCodecRefusesUnknownVersions(t *testing.T) {
	ev := &relay.Event{ID: relay.NewEventID(time.Now()), Targets: []string{"a"}}
	d := relay.NewDelivery(ev, "a")
	a := relay.Attempt{Number: 1}
	evRec, _ := encodeEvent(ev)
	dRec, _ := encodeDelivery(&d)
	aRec, _ := encodeAttempt(&a)
	for name, decode := range map[string]func([]byte) error{
		"event":    func(b []byte) error { _, err := decodeEvent(b, true); return err },
		"delivery": func(b []byte) error { var d relay.Delivery; return decodeDelivery(b, &d) },
		"head":     func(b []byte) error { _, _, err := deliveryHead(b); return err },
		"attempt":  func(b []byte) error { _, err := decodeAttempt(b); return err },
	} {
		rec := map[string][]byte{"event": evRec, "delivery": dRec, "head": dRec, "attempt": aRec}[name]
		rec[0] = 7
		err := decode(rec)
		if err == nil || !strings.Contains(err.Error(), "version 7") || !strings.Contains(err.Error(), "another version of hooxrelay") {
			t.Errorf("decoding a %s record of version 7: %v, want an error naming the version", name, err)
		}
		rec[0] = recordVersion
		if err := decode(rec[:0]); err == nil {
			t.Errorf("decoding an empty %s record succeeded", name)
		}
	}

	// A file written with the layout before versions: a delivery record
	// started with its state code.
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bktDeliveries)
		if err != nil {
			return err
		}
		return b.Put([]byte(d.ID()), append([]byte("p\x00\x00\x00\x00\x00\x00\x00\x00"), `{"state":"pending"}`...))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Open(path, Options{}); err == nil {
		s.Close()
		t.Fatal("Open of a store with a record of an unknown layout succeeded")
	} else if !strings.Contains(err.Error(), "version 112") || !strings.Contains(err.Error(), d.ID()) {
		t.Errorf("Open of a store with a record of an unknown layout: %v, want an error naming the record and its version", err)
	}
}
