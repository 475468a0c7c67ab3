package pebblestore

import (
	"testing"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// Delivery records keep the replay that requeued them, and version 1
// records, written before replays, are still read.
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
	if err := decodeDelivery(rec, &got); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery(appendDelivery(%+v)) = %+v, %v", d, got, err)
	}
	// A version 1 record is the same fields without the replay.
	d.Replay = ""
	rec, _ = appendDelivery(nil, &d)
	old := append([]byte{recordVersion}, rec[1:len(rec)-1]...)
	if err := decodeDelivery(old, &got); err != nil || !got.Equal(d) {
		t.Errorf("decodeDelivery of a version 1 record = %+v, %v; want %+v", got, err, d)
	}
	if st, err := deliveryState(old); err != nil || st != relay.Delivered {
		t.Errorf("deliveryState of a version 1 record = %q, %v", st, err)
	}
	if err := decodeDelivery(append([]byte{9}, rec[1:]...), &got); err == nil {
		t.Error("decodeDelivery of a version 9 record succeeded")
	}
}
