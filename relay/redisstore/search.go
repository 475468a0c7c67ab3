package redisstore

import (
	"context"
	"slices"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// The search index is one sorted set, "x", whose members all score 0 and
// are "<kind>\0<value>\0<event member>" (memberOf), so that the events of
// one value are a lexicographic range in receive order. An event adds one
// member per id its payload has (j: job_id, a: avatar_id, l: look_id) and
// one for its dedup key (k: its mark key) only when that cannot be read
// back from its ids (unknown tasks): a search by the dedup key of a known
// task walks the range of the id in it and checks the key. One set instead
// of a key per event keeps what a pending event costs Redis low.
func (s *Store) searchKey() string { return s.pfx + "x" }

func searchMember(kind byte, value, m string) string {
	return string(kind) + "\x00" + value + "\x00" + m
}

func searchPrefix(kind byte, value string) string {
	return string(kind) + "\x00" + value + "\x00"
}

// searchMembers returns the members ev adds to the search index.
func searchMembers(ev *relay.Event) []any {
	m := memberOf(ev.ID)
	out := make([]any, 0, 4)
	for _, ix := range [...]struct {
		kind byte
		v    string
	}{{'j', ev.JobID}, {'a', ev.AvatarID}, {'l', ev.LookID}} {
		if ix.v != "" {
			out = append(out, searchMember(ix.kind, ix.v, m))
		}
	}
	if !dedupFromIDs(ev) {
		out = append(out, searchMember('k', relay.MarkKey(ev.DedupKey), m))
	}
	return out
}

// dedupFromIDs reports whether a search for ev's dedup key finds ev through
// the range dedupRanges derives from the key.
func dedupFromIDs(ev *relay.Event) bool {
	parts := strings.Split(ev.DedupKey, ":")
	switch len(parts) {
	case 3:
		return ev.JobID != "" && parts[1] == ev.JobID
	case 4:
		return ev.LookID != "" && parts[2] == ev.LookID
	}
	return false
}

// lexRange is a range of an index: the members of key that start with
// prefix ("" for all), each an event member after it.
type lexRange struct{ key, prefix string }

// ranges returns the ranges whose union holds every event f selects, from
// the most selective index of f.
func (s *Store) ranges(ctx context.Context, f *relay.EventFilter) ([]lexRange, error) {
	x := s.searchKey()
	switch {
	case f.DedupKey != "":
		out := []lexRange{{x, searchPrefix('k', relay.MarkKey(f.DedupKey))}}
		switch parts := strings.Split(f.DedupKey, ":"); len(parts) {
		case 3:
			out = append(out, lexRange{x, searchPrefix('j', parts[1])})
		case 4:
			out = append(out, lexRange{x, searchPrefix('l', parts[2])})
		}
		return out, nil
	case f.JobID != "":
		return []lexRange{{x, searchPrefix('j', f.JobID)}}, nil
	case f.LookID != "":
		return []lexRange{{x, searchPrefix('l', f.LookID)}}, nil
	case f.AvatarID != "":
		return []lexRange{{x, searchPrefix('a', f.AvatarID)}}, nil
	}
	combos, err := s.combos(ctx, *f)
	if err != nil {
		return nil, err
	}
	var out []lexRange
	for _, c := range combos {
		out = append(out, lexRange{s.eventIndexKey(true, c), ""}, lexRange{s.eventIndexKey(false, c), ""})
	}
	return out, nil
}

// bounds returns the ZRANGEBYLEX bounds of r's members between the event
// members lo (inclusive) and hi (exclusive), "" for none, past cursor (the
// last member already read) in the walk's direction.
func (r lexRange) bounds(lo, hi, cursor string, oldest bool) (min, max string) {
	min, max = "["+r.prefix+lo, "("+r.prefix+hi
	switch {
	case lo == "" && r.prefix == "":
		min = "-"
	case lo == "":
		min = "[" + r.prefix
	}
	switch {
	case hi == "" && r.prefix == "":
		max = "+"
	case hi == "":
		// The prefix ends in a NUL: the members after it start with \x01.
		max = "(" + r.prefix[:len(r.prefix)-1] + "\x01"
	}
	if cursor != "" {
		if oldest {
			min = "(" + r.prefix + cursor
		} else {
			max = "(" + r.prefix + cursor
		}
	}
	return min, max
}

// Events implements relay.Admin: it walks the ranges of f's most selective
// index (ranges) between the ids of f's time range and page, reading no
// key it does not check, and checks the other fields on the events they
// yield. Entries whose keys expired and are not pruned yet are skipped.
func (s *Store) Events(ctx context.Context, f relay.EventFilter) ([]relay.EventSummary, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	limit := relay.PageSize(f.Limit)
	rs, err := s.ranges(ctx, &f)
	if err != nil {
		return nil, err
	}
	lo, hi := f.IDRange()
	if lo != "" {
		lo = memberOf(lo)
	}
	if hi != "" {
		hi = memberOf(hi)
		if lo >= hi {
			return nil, nil
		}
	}
	var out []relay.EventSummary
	cursor := ""
	for len(out) < limit && len(rs) > 0 {
		want := limit - len(out)
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.StringSliceCmd, len(rs))
		for i, r := range rs {
			min, max := r.bounds(lo, hi, cursor, f.Oldest)
			if f.Oldest {
				cmds[i] = pipe.ZRangeByLex(ctx, r.key, &redis.ZRangeBy{Min: min, Max: max, Count: int64(want)})
			} else {
				cmds[i] = pipe.ZRevRangeByLex(ctx, r.key, &redis.ZRangeBy{Max: max, Min: min, Count: int64(want)})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.fail("list events", err)
		}
		var ms []string
		for i, c := range cmds {
			for _, m := range c.Val() {
				ms = append(ms, m[len(rs[i].prefix):])
			}
		}
		slices.Sort(ms)
		if !f.Oldest {
			slices.Reverse(ms)
		}
		ms = slices.Compact(ms)
		last := len(ms) < want // every range is read to its end
		ms = ms[:min(len(ms), want)]
		if len(ms) == 0 {
			break
		}
		cursor = ms[len(ms)-1]
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = eidOf(m)
		}
		evs, err := s.readEvents(ctx, ids, false)
		if err != nil {
			return nil, err
		}
		for _, e := range evs {
			if !f.Match(e.ev) {
				continue
			}
			ds, err := e.deliveries()
			if err != nil {
				return nil, err
			}
			out = append(out, relay.EventSummary{Event: e.ev, Deliveries: ds})
		}
		if last {
			break
		}
	}
	return out, nil
}
