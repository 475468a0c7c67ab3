package redisstore

import (
	"testing"

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
