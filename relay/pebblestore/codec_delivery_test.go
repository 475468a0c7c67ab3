package pebblestore

import (
	"testing"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// Delivery records keep the replay that requeued them and leave the event
// id and target to the key; version 2 records, which held those, and
// version 1 ones, written before replays, are still read.
func TestDeliveryRecordReplay(t *testing.T) {
	d := storetest.ReplayedDelivery()
	rec, err := appendDelivery(nil, &d)
	if err != nil {
		t.Fatal(err)
	}
	if rec[0] != deliveryVersion {
		t.Fatalf("a delivery record starts with %d, want %d", rec[0], deliveryVersion)
	}
	var got relay.Delivery
	if err := decodeDelivery(d.ID(), rec, &got); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery(appendDelivery(%+v)) = %+v, %v", d, got, err)
	}
	v2 := append([]byte{deliveryReplayVersion, rec[1]}, putString(putString(nil, d.EventID), d.Target)...)
	v2 = append(v2, rec[2:]...)
	if err := decodeDelivery(d.ID(), v2, &got); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery of a version 2 record = %+v, %v; want %+v", got, err, d)
	}
	// A version 1 record is version 2's fields without the replay.
	d.Replay = ""
	rec, _ = appendDelivery(nil, &d)
	old := append([]byte{recordVersion, rec[1]}, putString(putString(nil, d.EventID), d.Target)...)
	old = append(old, rec[2:len(rec)-1]...)
	if err := decodeDelivery(d.ID(), old, &got); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery of a version 1 record = %+v, %v; want %+v", got, err, d)
	}
	if st, err := deliveryState(old); err != nil || st != relay.Delivered {
		t.Errorf("deliveryState of a version 1 record = %q, %v", st, err)
	}
	if err := decodeDelivery(d.ID(), append([]byte{9}, rec[1:]...), &got); err == nil {
		t.Error("decodeDelivery of a version 9 record succeeded")
	}
}
