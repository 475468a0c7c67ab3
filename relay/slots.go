package relay

import (
	"context"
	"time"
)

// slots are a target's attempt slots, max_in_flight of them: the feeder
// takes one for each delivery it claims, and each goes back when the
// delivery's attempt ends or the delivery is released unattempted. A free
// slot comes before a claim, so that nothing is held that cannot be
// attempted yet while other relays could send it. Safe for concurrent use.
type slots chan struct{}

func newSlots(n int) slots {
	s := make(slots, n)
	s.give(n)
	return s
}

// take waits for a free slot, then takes every other free one, and
// returns how many it took; 0, holding none, when ctx ended meanwhile (a
// feeder stopped by shutdown or a reload claims nothing more). While fewer
// than a quarter of the slots are free (the target is busy), it waits up
// to batchLinger for that many: a claim's scan of the store costs about as
// much for one delivery as for several.
func (s slots) take(ctx context.Context) int {
	select {
	case <-s:
	case <-ctx.Done():
		return 0
	}
	n := 1 + s.takeFree()
	if want := cap(s) / 4; n < want {
		timer := time.NewTimer(batchLinger)
		defer timer.Stop()
	wait:
		for n < want {
			select {
			case <-s:
				n += 1 + s.takeFree()
			case <-timer.C:
				break wait
			case <-ctx.Done():
				break wait
			}
		}
	}
	if ctx.Err() != nil {
		s.give(n)
		return 0
	}
	return n
}

// batchLinger bounds how long take waits for more slots once it has one.
const batchLinger = time.Millisecond

// takeFree takes every free slot without waiting.
func (s slots) takeFree() int {
	n := 0
	for {
		select {
		case <-s:
			n++
		default:
			return n
		}
	}
}

// give returns n slots.
func (s slots) give(n int) {
	for range n {
		s <- struct{}{}
	}
}
