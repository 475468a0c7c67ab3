package relay

import "context"

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
// returns how many it took; 0 when ctx ended first.
func (s slots) take(ctx context.Context) int {
	select {
	case <-s:
	case <-ctx.Done():
		return 0
	}
	n := 1
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
