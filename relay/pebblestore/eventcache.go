package pebblestore

import (
	"sync"

	"github.com/hooxrelay/hooxrelay/relay"
)

// eventCache keeps an event that a claim read for one of its targets
// until the claims of its other targets take it: an event fanned out to n
// targets is then read and decoded once instead of n times. Claims only
// read an event (the dispatcher shares it between attempts), and a stored
// event changes only by gaining targets (SwapDeliveries, which drops it
// from the cache). Bounded in bytes, the oldest going first: a target that
// does not claim (paused, slow) only costs its events a read.
type eventCache struct {
	mu    sync.Mutex
	m     map[string]*cachedEvent
	order []*cachedEvent // oldest first, from head; gone ones are skipped
	head  int
	bytes int
}

type cachedEvent struct {
	id   string
	ev   *relay.Event
	left int // claims still to take it
	size int
	gone bool
}

// eventCacheBytes bounds the events kept, payloads included.
const eventCacheBytes = 8 << 20

// take returns the event id if it is kept, and counts its claim.
func (c *eventCache) take(id string) *relay.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.m[id]
	if e == nil {
		return nil
	}
	if e.left--; e.left <= 0 {
		c.drop(e)
	}
	return e.ev
}

// put keeps ev, just read for a claim, for left more claims.
func (c *eventCache) put(ev *relay.Event, left int) {
	size := len(ev.Payload) + 512 // and about that much of fields
	if left <= 0 || size > eventCacheBytes/16 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*cachedEvent)
	}
	if old := c.m[ev.ID]; old != nil {
		c.drop(old)
	}
	for c.bytes+size > eventCacheBytes && c.head < len(c.order) {
		if e := c.order[c.head]; !e.gone {
			c.drop(e)
		}
		c.order[c.head] = nil
		c.head++
	}
	if c.head > len(c.order)/2 || len(c.order)-c.head > 2*len(c.m)+64 {
		c.compact()
	}
	e := &cachedEvent{id: ev.ID, ev: ev, left: left, size: size}
	c.m[ev.ID] = e
	c.order = append(c.order, e)
	c.bytes += size
}

// forget drops the event id.
func (c *eventCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.m[id]; e != nil {
		c.drop(e)
	}
}

func (c *eventCache) drop(e *cachedEvent) {
	delete(c.m, e.id)
	e.gone = true
	c.bytes -= e.size
}

// compact keeps only the events still kept in order.
func (c *eventCache) compact() {
	live := c.order[:0]
	for _, e := range c.order[c.head:] {
		if !e.gone {
			live = append(live, e)
		}
	}
	clear(c.order[len(live):])
	c.order, c.head = live, 0
}
