package redisstore

import (
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// Delivery records keep the replay that requeued them, and records of
// layoutVersion, written before replays, are still read.
func TestDeliveryRecordReplay(t *testing.T) {
	d := storetest.ReplayedDelivery()
	rec, err := encodeDelivery(&d)
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != deliveryReplayVersion || rec[1] != 'd' {
		t.Fatalf("a delivery record starts with %d %q, want %d 'd'", rec[0], rec[1], deliveryReplayVersion)
	}
	if got, err := decodeDelivery(d.EventID, d.Target, rec); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery(encodeDelivery(%+v)) = %+v, %v", d, got, err)
	}
	// A record of layoutVersion is the same fields without the replay.
	d.Replay = ""
	rec, _ = encodeDelivery(&d)
	old := append([]byte{layoutVersion}, rec[1:len(rec)-1]...)
	if got, err := decodeDelivery(d.EventID, d.Target, old); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery of a layout %d record = %+v, %v; want %+v", layoutVersion, got, err, d)
	}
}

// A delivery as an ingest makes it has a short record of its own, read
// back as the same delivery; any other is not written so.
func TestDeliveryRecordNew(t *testing.T) {
	at := time.Date(2024, 1, 15, 10, 30, 0, 123456789, time.UTC)
	ev := &relay.Event{ID: relay.NewEventID(at.Add(-time.Millisecond)), ReceivedAt: at}
	d := relay.NewDelivery(ev, "a")
	rec, ok := encodeNewDelivery(&d)
	if !ok || len(rec) > 6 || rec[0] != deliveryNewVersion || rec[1] != 'p' {
		t.Fatalf("encodeNewDelivery(%+v) = %q, %v; want a short pending record", d, rec, ok)
	}
	if got, err := decodeDelivery(d.EventID, d.Target, rec); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery(encodeNewDelivery(%+v)) = %+v, %v", d, got, err)
	}
	for _, change := range []func(*relay.Delivery){
		func(d *relay.Delivery) { d.Attempts = 1 },
		func(d *relay.Delivery) { d.State = relay.Dead },
		func(d *relay.Delivery) { d.NextAttemptAt = d.NextAttemptAt.Add(time.Second) },
		func(d *relay.Delivery) { d.Replay = "rpl_1" },
	} {
		other := d
		change(&other)
		if rec, ok := encodeNewDelivery(&other); ok {
			t.Errorf("encodeNewDelivery(%+v) = %q, want no short record", other, rec)
		}
	}
	if _, err := decodeDelivery(d.EventID, d.Target, append(rec, 0)); err == nil {
		t.Error("decodeDelivery of a short record with a byte more succeeded")
	}
}
