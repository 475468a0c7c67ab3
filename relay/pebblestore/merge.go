package pebblestore

import (
	"bytes"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// merge walks the keys of several index prefixes as one list of the ids
// that follow the prefixes, greatest first, or least first with oldest.
type merge struct {
	cs     []*cursor
	oldest bool
}

type cursor struct {
	it     *pebble.Iterator
	prefix int
	ok     bool
}

// id is the part of the cursor's key after its prefix.
func (c *cursor) id() []byte { return c.it.Key()[c.prefix:] }

// newMerge opens an iterator per prefix within the bounds that opts gives
// it; opts returns nil for a prefix with nothing in range.
func (s *Store) newMerge(prefixes [][]byte, opts func(p []byte) *pebble.IterOptions, oldest bool) (*merge, error) {
	m := &merge{oldest: oldest}
	for _, p := range prefixes {
		o := opts(p)
		if o == nil {
			continue
		}
		it, err := s.db.NewIter(o)
		if err != nil {
			m.close()
			return nil, err
		}
		c := &cursor{it: it, prefix: len(p)}
		if oldest {
			c.ok = it.First()
		} else {
			c.ok = it.Last()
		}
		m.cs = append(m.cs, c)
	}
	return m, nil
}

// peek returns the cursor at the next id, nil once every one is done.
func (m *merge) peek() *cursor {
	var best *cursor
	for _, c := range m.cs {
		if !c.ok {
			continue
		}
		if best == nil {
			best = c
			continue
		}
		cmp := bytes.Compare(c.id(), best.id())
		if (m.oldest && cmp < 0) || (!m.oldest && cmp > 0) {
			best = c
		}
	}
	return best
}

// advance moves c, the cursor peek returned, past its id.
func (m *merge) advance(c *cursor) {
	if m.oldest {
		c.ok = c.it.Next()
	} else {
		c.ok = c.it.Prev()
	}
}

// close closes the iterators and returns the first error of one.
func (m *merge) close() error {
	var err error
	for _, c := range m.cs {
		if cerr := c.it.Close(); err == nil {
			err = cerr
		}
	}
	m.cs = nil
	return err
}

// distinct returns the strings that come right after p in the keys with
// prefix p (length-prefixed, as key writes them), in order: one seek per
// string, whatever the number of keys that share it.
func (s *Store) distinct(p []byte) ([]string, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	var out []string
	for ok := it.First(); ok; {
		r := reader{b: it.Key()[len(p):]}
		v := r.string()
		if r.err != nil {
			it.Close()
			return nil, fmt.Errorf("corrupt index key %q", it.Key())
		}
		out = append(out, v)
		ok = it.SeekGE(prefixEnd(putString(bytes.Clone(p), v)))
	}
	return out, it.Close()
}
