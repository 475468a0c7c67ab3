package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// combos returns the tasks and statuses (see combo) that f selects: one,
// or, for a filter on the task or the status only or on neither, every
// one seen that matches it.
func (s *Store) combos(ctx context.Context, f relay.EventFilter) ([]string, error) {
	if f.Task != "" && f.Status != "" {
		return []string{combo(f.Task, f.Status)}, nil
	}
	all, err := s.rdb.SMembers(ctx, s.eventIndexesKey()).Result()
	if err != nil {
		return nil, s.fail("list event indexes", err)
	}
	var out []string
	for _, c := range all {
		task, status, ok := strings.Cut(c, "\x00")
		if ok && (f.Task == "" || f.Task == task) && (f.Status == "" || f.Status == status) {
			out = append(out, c)
		}
	}
	return out, nil
}

// storedEvent is an event as read: its record and its deliveries' hash.
type storedEvent struct {
	ev   *relay.Event
	dels map[string]string
}

// deliveries decodes the event's deliveries, in target order.
func (e storedEvent) deliveries() ([]relay.Delivery, error) {
	var out []relay.Delivery
	for _, t := range e.ev.Targets {
		rec, ok := e.dels[recField(t)]
		if !ok {
			continue
		}
		d, err := decodeDelivery(e.ev.ID, t, []byte(rec))
		if err != nil {
			return nil, fmt.Errorf("decode delivery %s: %w", relay.DeliveryID(e.ev.ID, t), err)
		}
		out = append(out, d)
	}
	return out, nil
}

// readEvents reads the events of ids with their deliveries' hashes,
// leaving out those that expired.
func (s *Store) readEvents(ctx context.Context, ids []string, withPayload bool) ([]storedEvent, error) {
	pipe := s.rdb.Pipeline()
	recs := make([]*redis.StringCmd, len(ids))
	dels := make([]*redis.MapStringStringCmd, len(ids))
	for i, id := range ids {
		recs[i] = pipe.Get(ctx, s.eventKey(id))
		dels[i] = pipe.HGetAll(ctx, s.dealsKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("read events", err)
	}
	out := make([]storedEvent, 0, len(ids))
	for i, id := range ids {
		rec, err := recs[i].Bytes()
		if folded, ok := foldedRecord(dels[i].Val()); ok {
			rec, err = folded, nil
		}
		if err != nil || len(dels[i].Val()) == 0 {
			continue // expired
		}
		ev, err := decodeEvent(id, rec, dels[i].Val()["t"], withPayload)
		if err != nil {
			return nil, fmt.Errorf("decode event %s: %w", id, err)
		}
		if n, ok := dels[i].Val()["n"]; ok {
			ev.Trail.Duplicates, _ = strconv.Atoi(n)
			last, _ := strconv.ParseInt(dels[i].Val()["l"], 10, 64)
			ev.Trail.LastDuplicate = time.UnixMilli(last).UTC()
		}
		out = append(out, storedEvent{ev, dels[i].Val()})
	}
	return out, nil
}

// Event implements relay.Admin.
func (s *Store) Event(ctx context.Context, id string) (*relay.EventDetail, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	evs, err := s.readEvents(ctx, []string{id}, true)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, relay.EventNotFound(id)
	}
	e := evs[0]
	ds, err := e.deliveries()
	if err != nil {
		return nil, err
	}
	out := &relay.EventDetail{Event: e.ev}
	for _, d := range ds {
		dd := relay.DeliveryDetail{Delivery: d}
		if dd.History, err = decodeHistory(d.EventID, []byte(e.dels[historyField(d.Target)])); err != nil {
			return nil, fmt.Errorf("decode attempts of %s: %w", d.ID(), err)
		}
		out.Deliveries = append(out.Deliveries, dd)
	}
	return out, nil
}

var allStates = []relay.State{relay.Pending, relay.Delivered, relay.Dead}

// Deliveries implements relay.Admin by merging the indexes that f selects:
// per target, those of the final states, whose members are event ids, and
// the indexes of the events with a pending delivery, whose pending
// deliveries (to f's target, if set) are the candidates. Each index is
// read up to the same number of entries past the cursor; the candidates
// are kept up to the nearest last entry of an index that had more, so
// that none in between is missed.
func (s *Store) Deliveries(ctx context.Context, f relay.DeliveryFilter) ([]relay.Delivery, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	limit := relay.PageSize(f.Limit)
	targets := []string{f.Target}
	if f.Target == "" {
		var err error
		if targets, err = s.rdb.SMembers(ctx, s.targetsKey()).Result(); err != nil {
			return nil, s.fail("list targets", err)
		}
	}
	states := allStates
	if f.State != "" {
		states = []relay.State{f.State}
	}
	// beyond reports whether delivery or event id a comes after b in the
	// order of the list.
	beyond := func(a, b string) bool { return (a < b) != f.Oldest && a != b }
	var out []relay.Delivery
	for cursor := f.Before; len(out) < limit; {
		want := int64(limit-len(out)) + 1 // one more: the cursor's event may come back
		ceid, _, _ := relay.SplitDeliveryID(cursor)
		lex := &redis.ZRangeBy{Min: "-", Max: "+", Count: want}
		if ceid != "" && f.Oldest {
			lex.Min = "[" + memberOf(ceid)
		} else if ceid != "" {
			lex.Max = "[" + memberOf(ceid)
		}
		walk := func(pipe redis.Pipeliner, key string) *redis.StringSliceCmd {
			if f.Oldest {
				return pipe.ZRangeByLex(ctx, key, lex)
			}
			return pipe.ZRevRangeByLex(ctx, key, lex)
		}
		var combos []string
		if slices.Contains(states, relay.Pending) {
			var err error
			if combos, err = s.combos(ctx, relay.EventFilter{}); err != nil {
				return nil, err
			}
		}
		pipe := s.rdb.Pipeline()
		type source struct {
			target string // "" for the pending index
			cmd    *redis.StringSliceCmd
		}
		var sources []source
		for _, st := range states {
			if st == relay.Pending {
				for _, c := range combos {
					sources = append(sources, source{"", walk(pipe, s.eventIndexKey(true, c))})
				}
				continue
			}
			for _, t := range targets {
				sources = append(sources, source{t, walk(pipe, s.stateIndexKey(st, t))})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.fail("list deliveries", err)
		}
		bound := "" // the nearest last entry of an index with more
		var final []string
		var pendingEvents []string
		for _, src := range sources {
			eids := src.cmd.Val()
			for i, m := range eids {
				eids[i] = eidOf(m)
			}
			if int64(len(eids)) == want {
				if last := eids[len(eids)-1]; bound == "" || beyond(bound, last) {
					bound = last
				}
			}
			for _, eid := range eids {
				if src.target == "" {
					pendingEvents = append(pendingEvents, eid)
				} else {
					final = append(final, relay.DeliveryID(eid, src.target))
				}
			}
		}
		cands, err := s.pendingOf(ctx, pendingEvents, f.Target)
		if err != nil {
			return nil, err
		}
		for _, id := range final {
			cands = append(cands, relay.Delivery{EventID: id[:strings.IndexByte(id, ':')], Target: id[strings.IndexByte(id, ':')+1:]})
		}
		kept := cands[:0]
		for _, d := range cands {
			if (cursor == "" || beyond(d.ID(), cursor)) && (bound == "" || !beyond(d.EventID, bound)) {
				kept = append(kept, d)
			}
		}
		slices.SortFunc(kept, func(a, b relay.Delivery) int {
			if f.Oldest {
				return strings.Compare(a.ID(), b.ID())
			}
			return strings.Compare(b.ID(), a.ID())
		})
		kept = kept[:min(len(kept), limit-len(out))]
		switch {
		case len(kept) > 0:
			cursor = kept[len(kept)-1].ID()
		case bound != "":
			// Past the bound's event, whose deliveries were all seen.
			if f.Oldest {
				cursor = bound + ";"
			} else {
				cursor = bound + ":"
			}
			continue
		default:
			return out, nil
		}
		ds, err := s.fillRecords(ctx, kept)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
	}
	return out, nil
}

// pendingOf returns the pending deliveries of the events eids, to target
// only unless it is "".
func (s *Store) pendingOf(ctx context.Context, eids []string, target string) ([]relay.Delivery, error) {
	if len(eids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(eids))
	for i, eid := range eids {
		cmds[i] = pipe.HGetAll(ctx, s.dealsKey(eid))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("read pending deliveries", err)
	}
	var out []relay.Delivery
	for i, eid := range eids {
		for field, rec := range cmds[i].Val() {
			t, ok := strings.CutPrefix(field, "d:")
			if !ok || (target != "" && t != target) || len(rec) < 2 || rec[1] != stateCodes[relay.Pending] {
				continue
			}
			d, err := decodeDelivery(eid, t, []byte(rec))
			if err != nil {
				return nil, fmt.Errorf("decode delivery %s: %w", relay.DeliveryID(eid, t), err)
			}
			out = append(out, d)
		}
	}
	return out, nil
}

// fillRecords returns ds with the records of those that have none yet (a
// zero State), leaving out those that expired.
func (s *Store) fillRecords(ctx context.Context, ds []relay.Delivery) ([]relay.Delivery, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(ds))
	for i, d := range ds {
		if d.State == "" {
			cmds[i] = pipe.HGet(ctx, s.dealsKey(d.EventID), recField(d.Target))
		}
	}
	if pipe.Len() > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, s.fail("read deliveries", err)
		}
	}
	out := make([]relay.Delivery, 0, len(ds))
	for i, d := range ds {
		if cmds[i] != nil {
			rec, err := cmds[i].Bytes()
			if err != nil {
				continue
			}
			if d, err = decodeDelivery(d.EventID, d.Target, rec); err != nil {
				return nil, fmt.Errorf("decode delivery %s: %w", ds[i].ID(), err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// Counts implements relay.Admin. Finished deliveries are counted from their
// indexes, which the pruner clears of expired entries once a minute.
func (s *Store) Counts(ctx context.Context) (map[string]relay.StateCounts, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	targets, err := s.rdb.SMembers(ctx, s.targetsKey()).Result()
	if err != nil {
		return nil, s.fail("list targets", err)
	}
	pipe := s.rdb.Pipeline()
	cmds := make([][4]*redis.IntCmd, len(targets))
	for i, t := range targets {
		cmds[i] = [4]*redis.IntCmd{
			pipe.ZCard(ctx, s.queueKey(t)), pipe.ZCard(ctx, s.heldKey(t)),
			pipe.ZCard(ctx, s.stateIndexKey(relay.Delivered, t)), pipe.ZCard(ctx, s.stateIndexKey(relay.Dead, t)),
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("count deliveries", err)
	}
	out := make(map[string]relay.StateCounts, len(targets))
	for i, t := range targets {
		c := cmds[i]
		out[t] = relay.StateCounts{Pending: int(c[0].Val() + c[1].Val()), Delivered: int(c[2].Val()), Dead: int(c[3].Val())}
	}
	return out, nil
}

// SetPaused implements relay.Admin.
func (s *Store) SetPaused(ctx context.Context, target string, paused bool) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	var err error
	if paused {
		err = s.rdb.SAdd(ctx, s.pausedKey(), target).Err()
	} else {
		err = s.rdb.SRem(ctx, s.pausedKey(), target).Err()
	}
	if err != nil {
		return s.fail("pause "+target, err)
	}
	return nil
}

// Paused implements relay.Admin.
func (s *Store) Paused(ctx context.Context) (map[string]bool, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	ts, err := s.rdb.SMembers(ctx, s.pausedKey()).Result()
	if err != nil {
		return nil, s.fail("list paused targets", err)
	}
	out := make(map[string]bool, len(ts))
	for _, t := range ts {
		out[t] = true
	}
	return out, nil
}
