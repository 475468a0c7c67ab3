package pebblestore

// SetFault makes every commit of s fail with err, as a disk that refuses
// writes does, until it is called with nil.
func SetFault(s *Store, err error) {
	if err == nil {
		s.fault.Store(nil)
		return
	}
	s.fault.Store(&err)
}
