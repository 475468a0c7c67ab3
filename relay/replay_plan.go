package relay

import (
	"context"
	"slices"
	"time"
)

// What a replay does to one event, decided over any store: the swaps that
// requeue its finished deliveries and create its missing ones. The dry run
// counts them; a run stores them.

// replayPage returns up to n events of r after the event id after, oldest
// first, each with its deliveries.
//
// The stores answer one task and one status per query, so a replay of
// several asks once per (task, status) pair, each from the same cursor, and
// merges the answers by id (ids sort by receive time); what is past the
// n-th is asked again for the next page. The pairs select disjoint events.
// The bounds are checked here too, so that an event outside them is never
// replayed, whatever the store answers.
func replayPage(ctx context.Context, a Admin, r *Replay, after string, n int) ([]EventSummary, error) {
	if r.Event != "" {
		return oneEventPage(ctx, a, r.Event, after)
	}
	tasks, statuses := orAll(r.Tasks), orAll(r.Statuses)
	var out []EventSummary
	for _, task := range tasks {
		for _, status := range statuses {
			es, err := a.Events(ctx, EventFilter{Task: task, Status: status, Since: r.Since, Until: r.Until,
				Before: after, Limit: n, Oldest: true})
			if err != nil {
				return nil, err
			}
			for _, e := range es {
				if replayed(r, e.Event, after) {
					out = append(out, e)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b EventSummary) int {
		switch {
		case a.Event.ID < b.Event.ID:
			return -1
		case a.Event.ID > b.Event.ID:
			return 1
		}
		return 0
	})
	out = slices.CompactFunc(out, func(a, b EventSummary) bool { return a.Event.ID == b.Event.ID })
	return out[:min(len(out), n)], nil
}

// orAll is the values of a filter field, or one empty value (all) for none.
func orAll(vs []string) []string {
	if len(vs) == 0 {
		return []string{""}
	}
	return vs
}

// replayed reports whether ev is one of r's events, after the cursor.
func replayed(r *Replay, ev *Event, after string) bool {
	return ev.ID > after && !ev.ReceivedAt.Before(r.Since) && ev.ReceivedAt.Before(r.Until) &&
		(len(r.Tasks) == 0 || slices.Contains(r.Tasks, ev.Task)) &&
		(len(r.Statuses) == 0 || slices.Contains(r.Statuses, ev.Status))
}

// oneEventPage is the page of a replay of one event: the event, until it
// is handled.
func oneEventPage(ctx context.Context, a Admin, id, after string) ([]EventSummary, error) {
	if after >= id {
		return nil, nil
	}
	d, err := a.Event(ctx, id)
	if err != nil {
		return nil, err
	}
	ds := make([]Delivery, len(d.Deliveries))
	for i, dd := range d.Deliveries {
		ds[i] = dd.Delivery
	}
	return []EventSummary{{Event: d.Event, Deliveries: ds}}, nil
}

// replayTargets returns the targets of ev that r re-sends it to: those the
// routes of set give it now, narrowed to r.Targets when set, or r.Targets
// as they are for a replay of one event. Only targets of set count: a
// delivery to any other would wait for a target that is not there.
func replayTargets(ctx context.Context, a Admin, set *Settings, r *Replay, ev *Event) ([]string, error) {
	var ts []string
	if r.Event != "" {
		ts = r.Targets
	} else {
		var doc map[string]any
		if conditional(set) {
			payload := ev.Payload
			if payload == nil {
				d, err := a.Event(ctx, ev.ID)
				if err != nil {
					return nil, err
				}
				payload = d.Event.Payload
			}
			if p, err := ParsePayload(payload); err == nil {
				doc = p.Doc
			}
		}
		ts = set.Routes.Match(ev.Task, ev.Status, doc).Targets
		if len(r.Targets) > 0 {
			ts = slices.DeleteFunc(slices.Clone(ts), func(t string) bool { return !slices.Contains(r.Targets, t) })
		}
	}
	return slices.DeleteFunc(slices.Clone(ts), func(t string) bool { return !set.hasTarget(t) }), nil
}

// conditional reports whether a route of set has conditions on the
// payload: only then is an event's payload read to route it.
func conditional(set *Settings) bool {
	for _, rt := range set.Routes.Routes() {
		if len(rt.Where) > 0 {
			return true
		}
	}
	return false
}

func (set *Settings) hasTarget(name string) bool {
	return slices.ContainsFunc(set.Targets, func(t TargetSettings) bool { return t.Name == name })
}

// replaySwaps returns the swaps of replay id for the event of e to targets,
// at now: a finished delivery is requeued with a fresh budget, a missing
// one created, a pending one left alone. mine counts the deliveries that
// already carry id: this replay handled them before a restart.
func replaySwaps(e EventSummary, targets []string, id string, now time.Time) (swaps []Swap, mine int) {
	for _, t := range targets {
		i := slices.IndexFunc(e.Deliveries, func(d Delivery) bool { return d.Target == t })
		if i < 0 {
			swaps = append(swaps, Swap{New: replayedDelivery(NewDelivery(e.Event, t), id, now)})
			continue
		}
		d := &e.Deliveries[i]
		switch {
		case d.Replay == id:
			mine++
		case d.State == Pending:
		default:
			swaps = append(swaps, Swap{Old: d, New: replayedDelivery(*d, id, now)})
		}
	}
	return swaps, mine
}

// replayedDelivery is d put back in line by replay id.
func replayedDelivery(d Delivery, id string, now time.Time) Delivery {
	d = requeue(d, now)
	d.Replay = id
	return d
}
