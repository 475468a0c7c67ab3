package pebblestore

import (
	"context"
	"fmt"

	"github.com/hooxrelay/hooxrelay/relay"
)

var _ relay.OutcomeQueue = (*Store)(nil)

// completion is outcomes waiting to be written, and what to tell of it.
type completion struct {
	outcomes []relay.Outcome
	done     func(error)
	token    bool // holds one of cslots (QueueComplete)
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
	ch := make(chan error, 1)
	if !s.enqueue(&completion{outcomes: outcomes, done: func(err error) { ch <- err }}) {
		return relay.ErrClosed
	}
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return fmt.Errorf("complete deliveries: %w", ctx.Err())
	}
}

// QueueComplete implements relay.OutcomeQueue: o goes into the next batch
// as Complete's outcomes do, without the caller waiting for it. Once
// maxQueuedOutcomes wait, it waits for one of them to be written first.
func (s *Store) QueueComplete(ctx context.Context, o relay.Outcome, done func(error)) error {
	select {
	case s.cslots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("complete deliveries: %w", ctx.Err())
	}
	if !s.enqueue(&completion{outcomes: []relay.Outcome{o}, done: done, token: true}) {
		<-s.cslots
		return relay.ErrClosed
	}
	return nil
}

// maxQueuedOutcomes bounds the outcomes QueueComplete lets wait: their
// deliveries stay held, and their callers go on claiming.
const maxQueuedOutcomes = 1024

// enqueue hands c to the writer; false once the writer has stopped.
func (s *Store) enqueue(c *completion) bool {
	s.cmu.Lock()
	if s.cstopped {
		s.cmu.Unlock()
		return false
	}
	s.cwait = append(s.cwait, c)
	lead := !s.cwriting
	s.cwriting = true
	s.cmu.Unlock()
	if lead {
		select {
		case s.ckick <- struct{}{}:
		default:
		}
	}
	return true
}

// maxCompleteBatch bounds the outcomes of one batch.
const maxCompleteBatch = 256

// completionWriter writes the waiting completions until Close, and then
// those still waiting. One goroutine for the store's life: a writer
// started per idle spell grew its stack through pebble each time.
func (s *Store) completionWriter() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ckick:
			s.writeCompletions()
		case <-s.ctx.Done():
			s.cmu.Lock()
			s.cstopped = true
			s.cmu.Unlock()
			// Close waits for this goroutine before it closes the
			// database, and makes what is written here durable.
			s.writeCompletions()
			return
		}
	}
}

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
			if c.token {
				<-s.cslots
			}
			c.done(err)
		}
	}
}
