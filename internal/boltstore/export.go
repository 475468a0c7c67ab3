package boltstore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Records receives what Export reads, one record at a time; an error
// stops the export.
type Records struct {
	// Sizes is called first with how many records of each kind the file
	// holds, for progress reports.
	Sizes    func(events, deliveries, attempts, marks int)
	Event    func(ev *relay.Event) error
	Delivery func(d *relay.Delivery) error
	// Attempt receives an attempt with the id of its delivery.
	Attempt func(deliveryID string, a *relay.Attempt) error
	// Mark receives a dedup mark: its source, its key as stored
	// (relay.MarkKey of the dedup key) and the id of the event it names.
	Mark   func(source, markKey, eventID string) error
	Paused func(target string) error
}

// Export reads every record of the bbolt store file at path, opened
// read-only (a relay still running on it makes Export wait 2s, then fail),
// in one read transaction: events, deliveries, attempts, dedup marks, then
// pause marks.
func Export(path string, r Records) error {
	if fi, err := os.Stat(path); err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	} else if fi.IsDir() {
		return fmt.Errorf("%s is a directory, not the store file of an earlier hooxrelay", path)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("open %s: the file is locked by another process (stop the relay that uses it first)", path)
		}
		return fmt.Errorf("open %s: %w (is it a hooxrelay store file?)", path, err)
	}
	defer db.Close()
	return db.View(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if tx.Bucket(b) == nil {
				return fmt.Errorf("%s has no %q bucket: it is not a hooxrelay store file", path, b)
			}
		}
		if r.Sizes != nil {
			n := func(b []byte) int { return tx.Bucket(b).Stats().KeyN }
			r.Sizes(n(bktEvents), n(bktDeliveries), n(bktAttempts), n(bktDedup))
		}
		return exportTx(tx, r)
	})
}

func exportTx(tx *bolt.Tx, r Records) error {
	err := tx.Bucket(bktEvents).ForEach(func(k, v []byte) error {
		ev, err := decodeEvent(v, true)
		if err != nil {
			return fmt.Errorf("event %s: %w", k, err)
		}
		return r.Event(ev)
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bktDeliveries).ForEach(func(k, v []byte) error {
		var d relay.Delivery
		if err := decodeDelivery(v, &d); err != nil {
			return fmt.Errorf("delivery %s: %w", k, err)
		}
		return r.Delivery(&d)
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bktAttempts).ForEach(func(k, v []byte) error {
		if len(k) < 5 || k[len(k)-5] != 0 {
			return fmt.Errorf("corrupt attempt key %q", k)
		}
		a, err := decodeAttempt(v)
		if err != nil {
			return fmt.Errorf("attempt %q: %w", k, err)
		}
		return r.Attempt(string(k[:len(k)-5]), &a)
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bktDedup).ForEach(func(k, v []byte) error {
		source, key, ok := bytes.Cut(k, []byte{0})
		if !ok {
			return fmt.Errorf("corrupt dedup key %q", k)
		}
		return r.Mark(string(source), string(key), string(v))
	})
	if err != nil {
		return err
	}
	prefix := pausedKey("")
	c := tx.Bucket(bktMeta).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if err := r.Paused(string(k[len(prefix):])); err != nil {
			return err
		}
	}
	return nil
}
