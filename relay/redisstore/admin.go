package redisstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// lexBefore is the exclusive upper bound of a reverse walk of an index
// from before ("" for the newest).
func lexBefore(before string) string {
	if before == "" {
		return "+"
	}
	return "(" + before
}

// lexAfter is the exclusive lower bound of a walk of an index from after
// ("" for the oldest).
func lexAfter(after string) string {
	if after == "" {
		return "-"
	}
	return "(" + after
}

// Events implements relay.Admin from the index of the filter: no key is
// read that is not returned. Entries whose keys expired and are not pruned
// yet are skipped.
func (s *Store) Events(ctx context.Context, f relay.EventFilter) ([]relay.EventSummary, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	limit := relay.PageSize(f.Limit)
	index := s.eventIndexKey(f.Task, f.Status)
	var out []relay.EventSummary
	for before := f.Before; len(out) < limit; {
		ids, err := s.rdb.ZRevRangeByLex(ctx, index, &redis.ZRangeBy{Max: lexBefore(before), Min: "-", Count: int64(limit - len(out))}).Result()
		if err != nil {
			return nil, s.fail("list events", err)
		}
		if len(ids) == 0 {
			break
		}
		before = ids[len(ids)-1]
		evs, err := s.events(ctx, ids, false)
		if err != nil {
			return nil, err
		}
		ds, err := s.deliveriesOf(ctx, evs)
		if err != nil {
			return nil, err
		}
		for i, ev := range evs {
			out = append(out, relay.EventSummary{Event: ev, Deliveries: ds[i]})
		}
	}
	return out, nil
}

// events reads the events of ids, leaving out those that expired.
func (s *Store) events(ctx context.Context, ids []string, withPayload bool) ([]*relay.Event, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		fields := eventFields
		if !withPayload {
			fields = fields[:2]
		}
		cmds[i] = pipe.HMGet(ctx, s.eventKey(id), fields...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("read events", err)
	}
	evs := make([]*relay.Event, 0, len(ids))
	for i, cmd := range cmds {
		ev, ok, err := readEvent(cmd.Val())
		if err != nil {
			return nil, fmt.Errorf("decode event %s: %w", ids[i], err)
		}
		if ok {
			evs = append(evs, ev)
		}
	}
	return evs, nil
}

// deliveriesOf reads the delivery records of each event, in target order.
func (s *Store) deliveriesOf(ctx context.Context, evs []*relay.Event) ([][]relay.Delivery, error) {
	var ids []string
	for _, ev := range evs {
		for _, t := range ev.Targets {
			ids = append(ids, relay.DeliveryID(ev.ID, t))
		}
	}
	ds, err := s.deliveries(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]relay.Delivery, len(ds))
	for _, d := range ds {
		byID[d.ID()] = d
	}
	out := make([][]relay.Delivery, len(evs))
	for i, ev := range evs {
		for _, t := range ev.Targets {
			if d, ok := byID[relay.DeliveryID(ev.ID, t)]; ok {
				out[i] = append(out[i], d)
			}
		}
	}
	return out, nil
}

// deliveries reads the records of ids in order, leaving out those that
// expired.
func (s *Store) deliveries(ctx context.Context, ids []string) ([]relay.Delivery, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.deliveryKey(id)
	}
	// One GET per key in a pipeline rather than one MGET: a Cluster
	// client would refuse an MGET only if the keys spanned slots, and
	// they never do, but a pipeline keeps this free of that reasoning.
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, s.fail("read deliveries", err)
	}
	out := make([]relay.Delivery, 0, len(ids))
	for i, cmd := range cmds {
		rec, err := cmd.Bytes()
		if err != nil {
			continue
		}
		d, err := decodeDelivery(rec)
		if err != nil {
			return nil, fmt.Errorf("decode delivery %s: %w", ids[i], err)
		}
		out = append(out, d)
	}
	return out, nil
}

// Event implements relay.Admin.
func (s *Store) Event(ctx context.Context, id string) (*relay.EventDetail, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	evs, err := s.events(ctx, []string{id}, true)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, relay.EventNotFound(id)
	}
	ds, err := s.deliveriesOf(ctx, evs)
	if err != nil {
		return nil, err
	}
	pipe := s.rdb.Pipeline()
	hist := make([]*redis.StringSliceCmd, len(ds[0]))
	for i, d := range ds[0] {
		hist[i] = pipe.LRange(ctx, s.attemptsKey(d.ID()), 0, -1)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, s.fail("read attempts of "+id, err)
	}
	out := &relay.EventDetail{Event: evs[0]}
	for i, d := range ds[0] {
		dd := relay.DeliveryDetail{Delivery: d}
		for _, raw := range hist[i].Val() {
			a, err := decodeAttempt([]byte(raw))
			if err != nil {
				return nil, fmt.Errorf("decode attempt of %s: %w", d.ID(), err)
			}
			dd.History = append(dd.History, a)
		}
		out.Deliveries = append(out.Deliveries, dd)
	}
	return out, nil
}

var allStates = []relay.State{relay.Pending, relay.Delivered, relay.Dead}

// Deliveries implements relay.Admin by merging the per state and target
// indexes that f selects.
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
	var out []relay.Delivery
	for before := f.Before; len(out) < limit; {
		want := int64(limit - len(out))
		pipe := s.rdb.Pipeline()
		var cmds []*redis.StringSliceCmd
		for _, t := range targets {
			for _, st := range states {
				key := s.stateIndexKey(st, t)
				if f.Oldest {
					cmds = append(cmds, pipe.ZRangeByLex(ctx, key, &redis.ZRangeBy{Min: lexAfter(before), Max: "+", Count: want}))
				} else {
					cmds = append(cmds, pipe.ZRevRangeByLex(ctx, key, &redis.ZRangeBy{Max: lexBefore(before), Min: "-", Count: want}))
				}
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, s.fail("list deliveries", err)
		}
		var ids []string
		for _, c := range cmds {
			ids = append(ids, c.Val()...)
		}
		if len(ids) == 0 {
			break
		}
		slices.Sort(ids)
		if !f.Oldest {
			slices.Reverse(ids)
		}
		ids = slices.Compact(ids)
		ids = ids[:min(len(ids), int(want))]
		before = ids[len(ids)-1]
		ds, err := s.deliveries(ctx, ids)
		if err != nil {
			return nil, err
		}
		out = append(out, ds...)
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
