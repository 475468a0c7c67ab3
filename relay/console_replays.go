package relay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/console"
)

// The console's replay page, over the core's replays as the admin API
// starts, counts, lists and cancels them.

var errNoReplays = errors.New("this store keeps no replays; use the embedded or the Redis store")

// replayRequest reads the console's form as POST /api/v1/replays reads its
// body.
func (b consoleBackend) replayRequest(f console.ReplayForm) (Replay, error) {
	if b.s.replays.store == nil {
		return Replay{}, errNoReplays
	}
	req := ReplayRequestJSON{Since: f.Since, Until: f.Until, Task: f.Tasks, Status: f.Statuses, Targets: f.Targets}
	if f.Rate != "" {
		rate, err := strconv.ParseFloat(f.Rate, 64)
		if err != nil {
			return Replay{}, fmt.Errorf("%w: rate must be a number of events per second, got %q", console.ErrBadQuery, f.Rate)
		}
		req.Rate = &rate
	}
	now := time.Now()
	rq, msg := b.s.replayRequest(req, now)
	if msg != "" {
		return Replay{}, fmt.Errorf("%w: %s", console.ErrBadQuery, msg)
	}
	return Replay{ID: NewReplayID(now), ReplayRequest: rq, State: ReplayRunning, CreatedAt: now}, nil
}

func (b consoleBackend) PlanReplay(ctx context.Context, f console.ReplayForm) (console.ReplayPlan, error) {
	rp, err := b.replayRequest(f)
	if err != nil {
		return console.ReplayPlan{}, err
	}
	events, deliveries, err := b.s.replays.count(ctx, &rp, true)
	return console.ReplayPlan{Since: rp.Since, Until: rp.Until, Events: events, Deliveries: deliveries}, err
}

func (b consoleBackend) StartReplay(ctx context.Context, f console.ReplayForm) (console.Replay, error) {
	rp, err := b.replayRequest(f)
	if err != nil {
		return console.Replay{}, err
	}
	return consoleReplay(rp), b.s.startReplay(ctx, rp)
}

func (b consoleBackend) Replays(ctx context.Context, limit int) ([]console.Replay, error) {
	if b.s.replays.store == nil {
		return nil, nil
	}
	rs, err := b.s.replays.store.ListReplays(ctx, limit)
	if err != nil {
		return nil, err
	}
	out := make([]console.Replay, len(rs))
	for i, rp := range rs {
		out[i] = consoleReplay(rp)
	}
	return out, nil
}

func consoleReplay(rp Replay) console.Replay {
	return console.Replay{ID: rp.ID, State: string(rp.State), EventsTotal: rp.EventsTotal, EventsDone: rp.EventsDone,
		Deliveries: rp.Deliveries, Since: rp.Since, Until: rp.Until, Tasks: rp.Tasks, Statuses: rp.Statuses, Targets: rp.Targets,
		Rate: rp.Rate, EventID: rp.Event, CreatedAt: rp.CreatedAt, FinishedAt: rp.FinishedAt, Error: rp.Error}
}

func (b consoleBackend) CancelReplay(ctx context.Context, id string) error {
	if b.s.replays.store == nil {
		return errNoReplays
	}
	_, err := b.s.replays.cancel(ctx, id)
	return consoleErr(err)
}
