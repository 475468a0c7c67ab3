package pebblestore

import (
	"context"
	"fmt"

	"github.com/hooxrelay/hooxrelay/relay"
)

// completion is one Complete call waiting for its outcomes to be written.
type completion struct {
	outcomes []relay.Outcome
	done     chan error
}

// Complete implements relay.Queue. The batch is not synced on its own: it
// is durable with the next synced commit, an ingest's or Close's, and a
// crash before that attempts the delivery again, as the interface allows.
//
// The outcomes of concurrent calls share one batch: while one batch is
// written, the calls that come in wait and go together into the next, so
// that a delivery costs a part of a commit instead of a commit and a turn
// of the write lock each.
//
// A caller whose ctx ends while the disk holds the write (a shutdown) is
// answered then; the deliveries stay held until the write ends.
func (s *Store) Complete(ctx context.Context, outcomes ...relay.Outcome) error {
	c := &completion{outcomes: outcomes, done: make(chan error, 1)}
	s.cmu.Lock()
	s.cwait = append(s.cwait, c)
	lead := !s.cwriting
	s.cwriting = true
	s.cmu.Unlock()
	if lead {
		go s.writeCompletions()
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("complete deliveries: %w", ctx.Err())
	}
}

// maxCompleteBatch bounds the outcomes of one batch.
const maxCompleteBatch = 256

// writeCompletions writes the waiting completions, a batch at a time,
// until none waits.
func (s *Store) writeCompletions() {
	for {
		s.cmu.Lock()
		n, size := 0, 0
		for n < len(s.cwait) && (n == 0 || size+len(s.cwait[n].outcomes) <= maxCompleteBatch) {
			size += len(s.cwait[n].outcomes)
			n++
		}
		cs := s.cwait[:n:n]
		s.cwait = s.cwait[n:]
		if n == 0 {
			s.cwriting = false
			s.cwait = nil
			s.cmu.Unlock()
			return
		}
		s.cmu.Unlock()
		// A new slice each time: a failed write keeps it (completeFailed).
		outcomes := cs[0].outcomes
		if n > 1 {
			outcomes = make([]relay.Outcome, 0, size)
			for _, c := range cs {
				outcomes = append(outcomes, c.outcomes...)
			}
		}
		err := s.complete(outcomes)
		for _, c := range cs {
			c.done <- err
		}
	}
}
