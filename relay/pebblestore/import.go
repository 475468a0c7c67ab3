package pebblestore

import (
	"github.com/hooxrelay/hooxrelay/relay"
)

// importBatch is how many bytes of records an Importer gathers per commit.
const importBatch = 4 << 20

// Importer writes records copied from another store (`hooxrelay store
// migrate`) into a new store, with their queue, index and counter keys, in
// large batches. It is for a store that nothing else uses meanwhile.
type Importer struct {
	s *Store
	b *batch
}

// Importer returns an importer into s; Finish ends it.
func (s *Store) Importer() *Importer {
	return &Importer{s: s, b: s.newBatch()}
}

func (im *Importer) maybeCommit() error {
	if im.b.Len() < importBatch {
		return nil
	}
	b := im.b
	im.b = im.s.newBatch()
	return im.s.commit(b, false)
}

// Event writes an event and its index keys, not its deliveries or mark.
func (im *Importer) Event(ev *relay.Event) error {
	im.b.Set(eventKey(ev.ID), appendEvent(nil, ev), nil)
	im.b.Set(taskStatKey(ev), nil, nil)
	for _, k := range searchKeys(ev) {
		im.b.Set(k, nil, nil)
	}
	return im.maybeCommit()
}

// Delivery writes a delivery, in the queue when it is pending.
func (im *Importer) Delivery(d *relay.Delivery) error {
	if _, err := move(im.b, nil, nil, d); err != nil {
		return err
	}
	return im.maybeCommit()
}

// Attempt writes an attempt of the delivery id.
func (im *Importer) Attempt(id string, a *relay.Attempt) error {
	im.b.Set(attemptKey(id, a.Number), appendAttempt(nil, a), nil)
	return im.maybeCommit()
}

// Mark writes a dedup mark, its key already in the stored form
// (relay.MarkKey).
func (im *Importer) Mark(source, markKey, eventID string) error {
	im.b.Set(append(key(kMark, source), markKey...), []byte(eventID), nil)
	return im.maybeCommit()
}

// Paused writes a target's pause mark.
func (im *Importer) Paused(target string) error {
	im.b.Set(pausedKey(target), nil, nil)
	return im.maybeCommit()
}

// Finish commits what is left and syncs the store to disk.
func (im *Importer) Finish() error {
	if err := im.s.commit(im.b, true); err != nil {
		return err
	}
	return im.s.db.Flush()
}
