package pebblestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
)

var _ relay.Replays = (*Store)(nil)

// kReplay is the key space of replay records: R <replay id> → the
// version byte and the record's JSON (records are few and small, and JSON
// lets their fields grow). Replay ids sort by creation time.
const kReplay = 'R'

func replayKey(id string) []byte { return append([]byte{kReplay}, id...) }

func encodeReplay(r *relay.Replay) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append([]byte{recordVersion}, b...), nil
}

func decodeReplay(b []byte) (relay.Replay, error) {
	var r relay.Replay
	b, err := checkVersion(b)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	return r, nil
}

// CreateReplay implements relay.Replays.
func (s *Store) CreateReplay(ctx context.Context, r relay.Replay) error {
	return s.putReplay(r, "create")
}

// UpdateReplay implements relay.Replays.
func (s *Store) UpdateReplay(ctx context.Context, r relay.Replay) error {
	if _, err := s.LoadReplay(ctx, r.ID); err != nil {
		return err
	}
	return s.putReplay(r, "update")
}

func (s *Store) putReplay(r relay.Replay, verb string) error {
	rec, err := encodeReplay(&r)
	if err != nil {
		return err
	}
	err = s.view(func() error {
		b := s.newBatch()
		b.Set(replayKey(r.ID), rec, nil)
		return s.commit(b, true)
	})
	if err != nil {
		return fmt.Errorf("%s replay %s: %w", verb, r.ID, err)
	}
	return nil
}

// LoadReplay implements relay.Replays.
func (s *Store) LoadReplay(ctx context.Context, id string) (relay.Replay, error) {
	var r relay.Replay
	err := s.view(func() error {
		v, closer, err := s.db.Get(replayKey(id))
		if errors.Is(err, pebble.ErrNotFound) {
			return relay.ReplayNotFound(id)
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		r, err = decodeReplay(v)
		return err
	})
	return r, err
}

// ListReplays implements relay.Replays.
func (s *Store) ListReplays(ctx context.Context, limit int) ([]relay.Replay, error) {
	limit = relay.PageSize(limit)
	var out []relay.Replay
	err := s.view(func() error {
		p := []byte{kReplay}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.Last(); ok && len(out) < limit; ok = it.Prev() {
			r, err := decodeReplay(it.Value())
			if err != nil {
				return fmt.Errorf("replay %s: %w", it.Key()[1:], err)
			}
			out = append(out, r)
		}
		return it.Error()
	})
	return out, err
}
