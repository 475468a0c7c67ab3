package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/console"
	dto "github.com/prometheus/client_model/go"
)

// consoleBackend is what the web console under /ui/ reads and does, over
// the same store, dispatcher and metrics as the admin API.
type consoleBackend struct{ s *Server }

var _ console.Backend = consoleBackend{}

// consoleErr marks an unknown id or name, and a refused move, for the
// console.
func consoleErr(err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %v", console.ErrNotFound, err)
	case errors.Is(err, ErrConflict):
		return fmt.Errorf("%w: %v", console.ErrConflict, err)
	}
	return err
}

func (b consoleBackend) AdminToken() string { return b.s.settings.Load().Server.AdminToken }

// Rejected reads the same ring as GET /api/v1/rejected.
func (b consoleBackend) Rejected(limit int) []console.Rejected {
	rs := b.s.rejected.list(limit)
	out := make([]console.Rejected, len(rs))
	for i, r := range rs {
		out[i] = console.Rejected(r)
	}
	return out
}

func (b consoleBackend) Targets(ctx context.Context) ([]console.Target, error) {
	ts, err := b.s.targets(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]console.Target, len(ts))
	for i, t := range ts {
		out[i] = console.Target{Name: t.Name, URL: t.URL, Breaker: t.Breaker, Paused: t.Paused,
			Pending: t.Pending, Dead: t.Dead, Delivered: t.Delivered}
	}
	return out, nil
}

// Counters reads the running totals off the relay's own metrics, and the
// backlog's age off hooxrelay_oldest_pending_age_seconds, which asks the
// store for one delivery per target as a scrape does.
func (b consoleBackend) Counters() console.Counters {
	c := console.Counters{Ingress: map[string]float64{}, Deliveries: map[string]map[string]float64{},
		LatencySum: map[string]float64{}, LatencyCount: map[string]float64{}, OldestPending: map[string]time.Duration{}}
	fams, err := b.s.registry.Gather()
	if err != nil {
		b.s.log.Warn("console: gathering metrics failed; rates may be off", "err", err)
	}
	for _, f := range fams {
		switch f.GetName() {
		case "hooxrelay_ingress_requests_total":
			for _, m := range f.GetMetric() {
				c.Ingress[label(m, "outcome")] += m.GetCounter().GetValue()
			}
		case "hooxrelay_deliveries_total":
			for _, m := range f.GetMetric() {
				t := label(m, "target")
				if c.Deliveries[t] == nil {
					c.Deliveries[t] = map[string]float64{}
				}
				c.Deliveries[t][label(m, "outcome")] += m.GetCounter().GetValue()
			}
		case "hooxrelay_oldest_pending_age_seconds":
			for _, m := range f.GetMetric() {
				c.OldestPending[label(m, "target")] = time.Duration(m.GetGauge().GetValue() * float64(time.Second))
			}
		case "hooxrelay_delivery_duration_seconds":
			for _, m := range f.GetMetric() {
				t := label(m, "target")
				c.LatencySum[t] += m.GetHistogram().GetSampleSum()
				c.LatencyCount[t] += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return c
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func (b consoleBackend) Events(ctx context.Context, q console.EventQuery) ([]console.Event, error) {
	f := EventFilter{Task: q.Task, Status: q.Status, JobID: q.JobID, AvatarID: q.AvatarID, LookID: q.LookID,
		DedupKey: q.DedupKey, Before: q.Before, Limit: q.Limit}
	now := time.Now()
	for _, p := range []struct {
		name, raw string
		t         *time.Time
	}{{"since", q.Since, &f.Since}, {"until", q.Until, &f.Until}} {
		if p.raw == "" {
			continue
		}
		t, err := ParseTimeBack(p.raw, now)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", console.ErrBadQuery, p.name, err)
		}
		*p.t = t
	}
	es, err := b.s.store.Events(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]console.Event, len(es))
	for i, e := range es {
		out[i] = consoleEvent(e.Event)
		for _, d := range e.Deliveries {
			out[i].Deliveries = append(out[i].Deliveries, console.DeliveryState{Target: d.Target, State: string(d.State), Attempts: d.Attempts})
		}
	}
	return out, nil
}

func consoleEvent(ev *Event) console.Event {
	return console.Event{ID: ev.ID, Source: ev.Source, Task: ev.Task, Status: ev.Status, DedupKey: ev.DedupKey,
		JobID: ev.JobID, AvatarID: ev.AvatarID, LookID: ev.LookID, ReceivedAt: ev.ReceivedAt}
}

func (b consoleBackend) Event(ctx context.Context, id string) (*console.EventDetail, error) {
	d, err := b.s.store.Event(ctx, id)
	if err != nil {
		return nil, consoleErr(err)
	}
	out := &console.EventDetail{Event: consoleEvent(d.Event), RemoteAddr: d.Event.RemoteAddr, Headers: d.Event.Headers, Payload: d.Event.Payload}
	tr := trailJSON(d.Event)
	out.Trail = console.Trail{Kept: tr.Verify != nil, Routes: tr.Routes, Targets: tr.Targets, AddedTargets: tr.AddedTargets, Duplicates: tr.Duplicates}
	if tr.Verify != nil {
		out.Trail.Verify, out.Trail.Verified = tr.Verify.Kind, tr.Verify.Result
	}
	if tr.LastDuplicateAt != nil {
		out.Trail.LastDuplicate = *tr.LastDuplicateAt
	}
	for _, dd := range d.Deliveries {
		cd := b.delivery(dd.Delivery)
		for _, a := range dd.History {
			cd.History = append(cd.History, console.Attempt{Number: a.Number, StartedAt: a.StartedAt, Duration: a.Duration,
				Status: a.Status, Error: a.Error, Body: a.Body, Waited: a.Waited, WaitedFor: a.WaitedFor, Replay: a.Replay})
		}
		out.Deliveries = append(out.Deliveries, cd)
	}
	return out, nil
}

func (b consoleBackend) delivery(d Delivery) console.Delivery {
	dj := b.s.deliveryJSON(d)
	return console.Delivery{ID: dj.DeliveryID, EventID: d.EventID, Target: d.Target, State: string(d.State), Attempts: d.Attempts,
		NextAttemptAt: d.NextAttemptAt, LastStatus: d.LastStatus, LastError: d.LastError, UpdatedAt: d.UpdatedAt, Waiting: dj.Waiting, Replay: d.Replay}
}

func (b consoleBackend) Dead(ctx context.Context, target, before string, limit int) ([]console.Delivery, error) {
	ds, err := b.s.store.Deliveries(ctx, DeliveryFilter{State: Dead, Target: target, Before: before, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]console.Delivery, len(ds))
	for i, d := range ds {
		out[i] = b.delivery(d)
	}
	return out, nil
}

func (b consoleBackend) Retry(ctx context.Context, id string) (string, error) {
	_, replay, err := b.s.retryOrResend(ctx, id)
	return replay, consoleErr(err)
}

func (b consoleBackend) known(name string) error {
	for _, t := range b.s.settings.Load().Targets {
		if t.Name == name {
			return nil
		}
	}
	return fmt.Errorf("%w: target %q is not in the config", console.ErrNotFound, name)
}

func (b consoleBackend) RetryDead(ctx context.Context, target string) (int, error) {
	if err := b.known(target); err != nil {
		return 0, err
	}
	return b.s.retryDead(ctx, target, 0)
}

func (b consoleBackend) Pause(ctx context.Context, target string, paused bool) error {
	if err := b.known(target); err != nil {
		return err
	}
	return b.s.pause(ctx, target, paused)
}
