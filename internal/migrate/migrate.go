// Package migrate copies the embedded store of an earlier hooxrelay (one
// bbolt file) into a new pebble store directory: `hooxrelay store migrate`.
package migrate

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/boltstore"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
)

// Counts is what a migration copied.
type Counts struct {
	Events, Deliveries, Attempts, Marks, Paused int
}

func (c Counts) String() string {
	return fmt.Sprintf("%d events, %d deliveries, %d attempts, %d dedup marks, %d pause marks",
		c.Events, c.Deliveries, c.Attempts, c.Marks, c.Paused)
}

// Run copies the bbolt store file from into a new store directory to. It
// writes into to+".partial" and renames it to to once everything is
// copied and on disk, so that to is never half a store. The file is only
// read. Progress, when not nil, gets a line every every (at most; 0 means
// two seconds) while records are copied.
func Run(from, to string, progress io.Writer, every time.Duration) (Counts, error) {
	var c Counts
	if from == "" || to == "" {
		return c, errors.New("both --from and --to are required")
	}
	if _, err := os.Stat(to); err == nil {
		return c, fmt.Errorf("--to %s exists already; give a new directory (the migration creates it)", to)
	}
	partial := filepath.Clean(to) + ".partial"
	if _, err := os.Stat(partial); err == nil {
		return c, fmt.Errorf("%s exists, left by a migration that did not finish; delete it and run the migration again", partial)
	}
	if every <= 0 {
		every = 2 * time.Second
	}
	s, err := pebblestore.Open(partial, pebblestore.Options{})
	if err != nil {
		return c, err
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	im := s.Importer()
	var total int
	done := 0
	last := time.Now()
	tick := func() {
		done++
		if progress != nil && time.Since(last) >= every {
			last = time.Now()
			fmt.Fprintf(progress, "migrate: %d of %d records (%d%%): %s\n", done, total, done*100/max(total, 1), c)
		}
	}
	err = boltstore.Export(from, boltstore.Records{
		Sizes: func(events, deliveries, attempts, marks int) {
			total = events + deliveries + attempts + marks
			if progress != nil {
				fmt.Fprintf(progress, "migrate: %s holds %d events, %d deliveries, %d attempts, %d dedup marks\n", from, events, deliveries, attempts, marks)
			}
		},
		Event: func(ev *relay.Event) error {
			c.Events++
			tick()
			return im.Event(ev)
		},
		Delivery: func(d *relay.Delivery) error {
			c.Deliveries++
			tick()
			return im.Delivery(d)
		},
		Attempt: func(id string, a *relay.Attempt) error {
			c.Attempts++
			tick()
			return im.Attempt(id, a)
		},
		Mark: func(source, key, id string) error {
			c.Marks++
			tick()
			return im.Mark(source, key, id)
		},
		Paused: func(target string) error {
			c.Paused++
			return im.Paused(target)
		},
	})
	if err == nil {
		err = im.Finish()
	}
	if err != nil {
		return c, fmt.Errorf("%w (%s is left half written: delete it before trying again)", err, partial)
	}
	closed = true
	if err := s.Close(); err != nil {
		return c, fmt.Errorf("close %s: %w", partial, err)
	}
	if err := os.Rename(partial, to); err != nil {
		return c, fmt.Errorf("rename %s to %s: %w", partial, to, err)
	}
	return c, nil
}
