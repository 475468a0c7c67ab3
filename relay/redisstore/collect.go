package redisstore

import (
	"context"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Outcomes of concurrent attempts share round trips and script runs:
// Complete hands them to a collector that sends what it has, in one run
// of completeScript, when
// maxBatch are waiting or batchWait after the first arrived. A final
// outcome is written after Complete returns (relay.Queue allows it: the
// delivery stays held until then); a pending one, whose retry the
// dispatcher waits for, is awaited, so that its Complete reports a write
// that failed.
const (
	maxBatch  = 256
	batchWait = time.Millisecond
)

// pendingOutcome is one outcome waiting for the collector.
type pendingOutcome struct {
	o    relay.Outcome
	call scriptCall
	done chan error // nil for a final outcome: nobody waits
}

// enqueue hands outcomes to the collector and wakes it.
func (s *Store) enqueue(items []pendingOutcome) {
	s.mu.Lock()
	s.batch = append(s.batch, items...)
	n := len(s.batch)
	s.mu.Unlock()
	if n >= maxBatch {
		select {
		case s.full <- struct{}{}:
		default:
		}
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// collectLoop writes the outcomes Complete hands it until Close, then
// writes what is left.
func (s *Store) collectLoop() {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-s.kick:
		case <-s.stop:
			s.flush()
			return
		}
		timer.Reset(batchWait)
		select {
		case <-timer.C:
		case <-s.full:
			timer.Stop()
		case <-s.stop:
			timer.Stop()
		}
		s.flush()
	}
}

// flush writes the outcomes waiting. Those not known to be written go back
// in line (at least once) when Redis answers again.
func (s *Store) flush() {
	for {
		s.mu.Lock()
		items := s.batch
		if len(items) > maxBatch {
			items = items[:maxBatch]
		}
		s.batch = s.batch[len(items):]
		s.mu.Unlock()
		if len(items) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := s.evalAll(ctx, completeScript, []scriptCall{s.completeCall(items)})
		cancel()
		s.mu.Lock()
		for _, it := range items {
			id := it.o.Delivery.ID()
			if err != nil {
				d := s.held[id]
				if d.EventID == "" {
					d = it.o.Delivery
				}
				s.orphans = append(s.orphans, d)
			}
			delete(s.held, id)
			delete(s.closing, id)
		}
		s.mu.Unlock()
		if err != nil {
			err = s.fail("complete deliveries", err)
			s.log.Warn("record delivery outcomes; the deliveries will be attempted again", "deliveries", len(items), "err", err)
		}
		for _, it := range items {
			if it.done != nil {
				it.done <- err
			}
		}
	}
}
