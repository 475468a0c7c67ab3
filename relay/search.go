package relay

import (
	"time"

	"github.com/oklog/ulid/v2"
)

// Match reports whether ev passes every field of f but Before and Limit,
// which are the store's paging: a store walks the most selective index of
// f and checks the other fields on the events it yields.
func (f *EventFilter) Match(ev *Event) bool {
	switch {
	case f.Task != "" && ev.Task != f.Task,
		f.Status != "" && ev.Status != f.Status,
		f.JobID != "" && ev.JobID != f.JobID,
		f.AvatarID != "" && ev.AvatarID != f.AvatarID,
		f.LookID != "" && ev.LookID != f.LookID,
		f.DedupKey != "" && ev.DedupKey != f.DedupKey,
		!f.Since.IsZero() && ev.ReceivedAt.Before(f.Since),
		!f.Until.IsZero() && !ev.ReceivedAt.Before(f.Until):
		return false
	}
	return true
}

// IDRange returns the event ids that bound f's time range and its page:
// the events f can select have ids at or after lo and before hi ("" is no
// bound). Ids keep the receive time to the millisecond, so the range may
// hold a few events just outside Since and Until: Match drops them.
func (f *EventFilter) IDRange() (lo, hi string) {
	if !f.Since.IsZero() {
		lo = timeID(f.Since.Truncate(time.Millisecond))
	}
	if !f.Until.IsZero() {
		u := f.Until.Truncate(time.Millisecond)
		if u.Before(f.Until) {
			u = u.Add(time.Millisecond)
		}
		hi = timeID(u)
	}
	if f.Before != "" {
		if f.Oldest {
			lo = max(lo, f.Before+"\x00") // the first id after Before
		} else if hi == "" || f.Before < hi {
			hi = f.Before
		}
	}
	return lo, hi
}

// timeID is the smallest event id of the millisecond of t.
func timeID(t time.Time) string {
	var u ulid.ULID
	if t.Before(time.UnixMilli(0)) {
		t = time.UnixMilli(0)
	}
	_ = u.SetTime(ulid.Timestamp(t))
	return "evt_" + u.String()
}
