package pebblestore

import "github.com/cockroachdb/pebble/v2"

// SetFault makes every commit of s fail with err, as a disk that refuses
// writes does, until it is called with nil.
func SetFault(s *Store, err error) {
	if err == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&err)
}

// SearchKeys returns how many keys the search indexes (job, avatar, look
// and dedup key) hold.
func SearchKeys(s *Store) (int, error) {
	n := 0
	for _, kind := range []byte{kJob, kAvatar, kLook, kDedup} {
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{kind}, UpperBound: []byte{kind + 1}})
		if err != nil {
			return 0, err
		}
		for ok := it.First(); ok; ok = it.Next() {
			n++
		}
		if err := it.Close(); err != nil {
			return 0, err
		}
	}
	return n, nil
}
