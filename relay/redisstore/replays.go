package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

var _ relay.Replays = (*Store)(nil)

// Replay records are strings "r:ID" (the record's JSON: they are few and
// small), listed by the sorted set "replays" (score 0, by id, and ids
// sort by creation time). They are kept until deleted by hand.
func (s *Store) replayKey(id string) string { return s.pfx + "r:" + id }
func (s *Store) replaysKey() string         { return s.pfx + "replays" }

// CreateReplay implements relay.Replays.
func (s *Store) CreateReplay(ctx context.Context, r relay.Replay) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.replayKey(r.ID), b, 0)
		p.ZAdd(ctx, s.replaysKey(), redis.Z{Member: r.ID})
		return nil
	})
	if err != nil {
		return s.fail("create replay "+r.ID, err)
	}
	return nil
}

// UpdateReplay implements relay.Replays.
func (s *Store) UpdateReplay(ctx context.Context, r relay.Replay) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	b, err := json.Marshal(&r)
	if err != nil {
		return err
	}
	ok, err := s.rdb.SetXX(ctx, s.replayKey(r.ID), b, redis.KeepTTL).Result()
	if err != nil {
		return s.fail("update replay "+r.ID, err)
	}
	if !ok {
		return relay.ReplayNotFound(r.ID)
	}
	return nil
}

// LoadReplay implements relay.Replays.
func (s *Store) LoadReplay(ctx context.Context, id string) (relay.Replay, error) {
	var r relay.Replay
	if s.isClosed() {
		return r, relay.ErrClosed
	}
	b, err := s.rdb.Get(ctx, s.replayKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return r, relay.ReplayNotFound(id)
	}
	if err != nil {
		return r, s.fail("load replay "+id, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("replay %s: %w: %v", id, errCorrupt, err)
	}
	return r, nil
}

// ListReplays implements relay.Replays.
func (s *Store) ListReplays(ctx context.Context, limit int) ([]relay.Replay, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	ids, err := s.rdb.ZRevRangeByLex(ctx, s.replaysKey(), &redis.ZRangeBy{Min: "-", Max: "+", Count: int64(relay.PageSize(limit))}).Result()
	if err != nil {
		return nil, s.fail("list replays", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.replayKey(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, s.fail("list replays", err)
	}
	out := make([]relay.Replay, 0, len(ids))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // deleted by hand
		}
		var r relay.Replay
		if err := json.Unmarshal([]byte(str), &r); err != nil {
			return nil, fmt.Errorf("replay %s: %w: %v", ids[i], errCorrupt, err)
		}
		out = append(out, r)
	}
	return out, nil
}
