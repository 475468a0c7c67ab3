package boltstore

import (
	"container/heap"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// queue is the in-memory index of one target's pending deliveries: a heap
// ordered by due time plus the set of held ones. It is all the memory a
// backlog costs; payloads stay on disk. Guarded by Store.mu.
type queue struct {
	items itemHeap
	byID  map[string]*item // pending and held deliveries of this target
	held  int
}

type item struct {
	id    string // delivery id
	due   int64  // unix nanoseconds
	index int    // in items, or -1 while held
	// fresh is the event of a delivery never attempted since it was
	// ingested by this process, so that its first claim needs no read
	// from disk. Bounded by Store.freshBytes; nil once claimed.
	fresh *relay.Event
}

func newQueue() *queue { return &queue{byID: make(map[string]*item)} }

// putFresh queues a just-ingested delivery with its event.
func (q *queue) putFresh(id string, due time.Time, ev *relay.Event) {
	q.put(id, due)
	q.byID[id].fresh = ev
}

// put makes id pending at due, whether it was unknown, pending or held.
func (q *queue) put(id string, due time.Time) {
	n := due.UnixNano()
	it, ok := q.byID[id]
	switch {
	case !ok:
		it = &item{id: id, due: n}
		q.byID[id] = it
		heap.Push(&q.items, it)
	case it.index < 0:
		q.held--
		it.due = n
		heap.Push(&q.items, it)
	default:
		it.due = n
		heap.Fix(&q.items, it.index)
	}
}

// remove forgets id, held or pending.
func (q *queue) remove(id string) {
	it, ok := q.byID[id]
	if !ok {
		return
	}
	delete(q.byID, id)
	if it.index < 0 {
		q.held--
		return
	}
	heap.Remove(&q.items, it.index)
}

// hold takes a pending item out of line, as a claim does.
func (q *queue) hold(it *item) {
	heap.Remove(&q.items, it.index)
	q.held++
}

// take holds up to max deliveries due at now and returns them.
func (q *queue) take(now time.Time, max int) []*item {
	n := now.UnixNano()
	var its []*item
	for len(its) < max && len(q.items) > 0 && q.items[0].due <= n {
		it := heap.Pop(&q.items).(*item)
		q.held++
		its = append(its, it)
	}
	return its
}

// size returns how many deliveries are pending, held ones included.
func (q *queue) size() int { return len(q.byID) }

// next reports the due time of the earliest pending delivery.
func (q *queue) next() (time.Time, bool) {
	if len(q.items) == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, q.items[0].due), true
}

type itemHeap []*item

func (h itemHeap) Len() int { return len(h) }
func (h itemHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].id < h[j].id // event ids sort by receive time: oldest first
}
func (h itemHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *itemHeap) Push(x any) {
	it := x.(*item)
	it.index = len(*h)
	*h = append(*h, it)
}
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*h = old[:len(old)-1]
	return it
}
