package redisstore

import (
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// BenchmarkCompleteArgs measures what preparing one outcome for the
// collector allocates.
func BenchmarkCompleteArgs(b *testing.B) {
	s := &Store{pfx: "{hooxrelay}:", owner: "owner", ownerArg: "owner", keepArg: int64(0)}
	now := time.Now()
	ev := &relay.Event{ID: relay.NewEventID(now), ReceivedAt: now}
	d := relay.NewDelivery(ev, "first")
	d.State, d.Attempts, d.LastStatus, d.UpdatedAt = relay.Delivered, 1, 200, now
	o := relay.Outcome{Delivery: d, Attempt: &relay.Attempt{Number: 1, StartedAt: now, Duration: time.Millisecond, Status: 200, Body: `{"status":"ok"}`}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.completeArgs(o); err != nil {
			b.Fatal(err)
		}
	}
}
