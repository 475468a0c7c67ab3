package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/notify"
)

// The relay's side of notifications: what each hook reports, and the
// watch that looks for a failing store and old backlogs.

func (s *Server) breakerChanged(target, from, to string) {
	switch to {
	case "open":
		s.notifier.Notify(notify.Event{Type: notify.BreakerOpen, Target: target, Detail: "breaker opened (was " + from + "): no attempts until the half-open probe succeeds"}, 0)
	case "closed":
		s.notifier.Notify(notify.Event{Type: notify.BreakerClosed, Target: target, Detail: "breaker closed (was " + from + "): deliveries resume"}, 0)
	}
}

func (s *Server) deliveryDead(d Delivery) {
	detail := fmt.Sprintf("delivery %s is dead after attempt %d: %s", d.ID(), d.Attempts, d.LastError)
	if d.Attempts == 0 {
		detail = fmt.Sprintf("delivery %s is dead without an attempt: %s", d.ID(), d.LastError)
	}
	s.notifier.Notify(notify.Event{Type: notify.DeadLetter, Target: d.Target, Detail: detail}, 0)
}

func (s *Server) targetPaused(target string) {
	s.notifier.Notify(notify.Event{Type: notify.TargetPaused, Target: target, Detail: "paused by an operator: nothing is delivered until POST /api/v1/targets/" + target + "/resume"}, 0)
}

func (s *Server) storeFailed(err error) {
	s.notifier.Notify(notify.Event{Type: notify.StoreUnavailable, Detail: "the store is failing; webhooks are answered 503: " + err.Error()}, 0)
}

// watchEvery is how often watch looks at the store.
var watchEvery = 15 * time.Second

// watch pings the store and looks at each target's oldest pending
// delivery, until ctx ends, for store_unavailable and backlog_age.
func (s *Server) watch(ctx context.Context) {
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.watchOnce(ctx)
	}
}

func (s *Server) watchOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, watchEvery)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		if ctx.Err() == nil {
			s.storeFailed(err)
		}
		return
	}
	least := s.notifier.BacklogAges()
	if least == 0 {
		return
	}
	now := time.Now()
	for _, t := range s.settings.Load().Targets {
		d, ok, err := s.oldestPending(ctx, t.Name)
		if err != nil || !ok {
			continue
		}
		if age := now.Sub(d.BudgetSince); age >= least {
			s.notifier.Notify(notify.Event{Type: notify.BacklogAge, Target: t.Name, At: now,
				Detail: fmt.Sprintf("the oldest pending delivery (%s) is %s old", d.ID(), age.Round(time.Second))}, age)
		}
	}
}
