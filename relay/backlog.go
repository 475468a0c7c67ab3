package relay

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// backlogAge exports hooxrelay_oldest_pending_age_seconds at scrape time:
// for each target of the config in use, how long the pending delivery of
// its oldest event has waited, counted from when its budget started (the
// receive time, or an operator's retry), 0 with none pending. Each scrape
// asks the store for one delivery per target, from its pending index.
type backlogAge struct {
	s    *Server
	desc *prometheus.Desc
}

func newBacklogAge(s *Server) *backlogAge {
	return &backlogAge{s: s, desc: prometheus.NewDesc("hooxrelay_oldest_pending_age_seconds",
		"Seconds the pending delivery of each target's oldest event has waited (from its receive time, or its retry); 0 when none is pending.",
		[]string{"target"}, nil)}
}

// backlogScrape bounds the store queries of one scrape.
const backlogScrape = 2 * time.Second

func (b *backlogAge) Describe(ch chan<- *prometheus.Desc) { ch <- b.desc }

// Collect leaves out a target whose store query fails: 0 would say
// "nothing waits" when nothing is known.
func (b *backlogAge) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), backlogScrape)
	defer cancel()
	now := time.Now()
	for _, t := range b.s.settings.Load().Targets {
		d, ok, err := b.s.oldestPending(ctx, t.Name)
		if err != nil {
			b.s.log.Debug("oldest pending delivery not known for the metric", "target", t.Name, "err", err)
			continue
		}
		age := 0.0
		if ok {
			age = max(now.Sub(d.BudgetSince).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(b.desc, prometheus.GaugeValue, age, t.Name)
	}
}

// oldestPending returns the pending delivery of target's oldest event, read
// from the store's pending index: what the backlog age metric and the
// backlog_age notification both measure.
func (s *Server) oldestPending(ctx context.Context, target string) (Delivery, bool, error) {
	ds, err := s.store.Deliveries(ctx, DeliveryFilter{State: Pending, Target: target, Limit: 1, Oldest: true})
	if err != nil || len(ds) == 0 {
		return Delivery{}, false, err
	}
	return ds[0], true, nil
}
