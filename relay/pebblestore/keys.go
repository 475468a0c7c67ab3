package pebblestore

import (
	"encoding/binary"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Key spaces, one leading byte each. A string inside a key that other
// fields follow is length-prefixed (a uvarint), so that no byte of it can
// be mistaken for the next field; event ids have a fixed length and sort
// by receive time, delivery ids are "<event id>:<target>".
const (
	kEvent    = 'e' // e <event id> → event record
	kDelivery = 'd' // d <delivery id> → delivery record
	kAttempt  = 'a' // a <delivery id> 0 <attempt number, 4 bytes> → attempt record
	kMark     = 'm' // m <source> <mark key> → event id (the dedup mark)
	kQueue    = 'q' // q <target> <due, 8 bytes> <delivery id> → its record ("" from earlier versions): pending, by due time
	kState    = 's' // s <state> <target> <delivery id> → "": deliveries by state and target
	kCount    = 'c' // c <target> <state> → int64 count, updated by merges
	kTask     = 't' // t <task> <event id> → "": no longer written (kTaskStat answers), deleted with its event
	kStatus   = 'u' // u <status> <event id> → "": as kTask
	kTaskStat = 'v' // v <task> <status> <event id> → "": events by task, status, or both
	kJob      = 'j' // j <job id> <event id> → ""
	kAvatar   = 'r' // r <avatar id> <event id> → ""
	kLook     = 'l' // l <look id> <event id> → ""
	kDedup    = 'g' // g <mark key of the dedup key> <event id> → ""
	kDup      = 'n' // n <event id> → its later duplicates: count and last time, merged (dupValue)
	kPaused   = 'p' // p <target> → "": a pause mark
	kMeta     = 'z' // z <name> → the store's own bookkeeping
)

var (
	metaFormat      = []byte("zformat")
	metaMarksPruned = []byte("zmarks_pruned_through") // event id
)

// formatName is the value of metaFormat: what wrote the directory.
const formatName = "hooxrelay-pebble-1"

func key(kind byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + binary.MaxVarintLen16
	}
	k := make([]byte, 1, n+16)
	k[0] = kind
	for _, p := range parts {
		k = putString(k, p)
	}
	return k
}

func eventKey(id string) []byte {
	return append([]byte{kEvent}, id...)
}

func deliveryKey(id string) []byte {
	return append([]byte{kDelivery}, id...)
}

// attemptPrefix is the prefix of every attempt key of delivery id.
func attemptPrefix(id string) []byte {
	k := make([]byte, 0, len(id)+6)
	k = append(k, kAttempt)
	k = append(k, id...)
	return append(k, 0)
}

func attemptKey(id string, n int) []byte {
	return binary.BigEndian.AppendUint32(attemptPrefix(id), uint32(n))
}

func markKey(source, dedupKey string) []byte {
	return append(key(kMark, source), relay.MarkKey(dedupKey)...)
}

// dueBytes orders times as unsigned big-endian integers: the sign bit is
// flipped so that times before 1970 sort first.
func appendDue(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano())^(1<<63))
}

func readDue(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b)^(1<<63)))
}

// queuePrefix is the prefix of target's queue keys.
func queuePrefix(target string) []byte { return key(kQueue, target) }

func queueKey(target string, due time.Time, id string) []byte {
	k := appendDue(queuePrefix(target), due)
	return append(k, id...)
}

// stateIndexPrefix is the prefix of the index of target's deliveries in
// state code.
func stateIndexPrefix(code byte, target string) []byte {
	return putString([]byte{kState, code}, target)
}

func stateIndexKey(code byte, d *relay.Delivery) []byte {
	return append(stateIndexPrefix(code, d.Target), d.ID()...)
}

func countKey(target string, code byte) []byte {
	return append(key(kCount, target), code)
}

func taskKey(ev *relay.Event) []byte     { return append(key(kTask, ev.Task), ev.ID...) }
func statusKey(ev *relay.Event) []byte   { return append(key(kStatus, ev.Status), ev.ID...) }
func taskStatKey(ev *relay.Event) []byte { return append(key(kTaskStat, ev.Task, ev.Status), ev.ID...) }

// searchKeys are the keys of ev in the indexes of its payload's ids and
// its dedup key; an id the event has not is not indexed.
func searchKeys(ev *relay.Event) [][]byte {
	out := make([][]byte, 0, 4)
	for _, ix := range [...]struct {
		kind byte
		v    string
	}{{kJob, ev.JobID}, {kAvatar, ev.AvatarID}, {kLook, ev.LookID}, {kDedup, relay.MarkKey(ev.DedupKey)}} {
		if ix.v != "" {
			out = append(out, append(key(ix.kind, ix.v), ev.ID...))
		}
	}
	return out
}

// searchPrefixes are the prefixes of the index keys that answer f with the
// fewest events: an id's, the task and status's, or every event's. Events
// by task or by status alone are those of the task and status pairs that
// have it, read from the pair index, one prefix per pair: tasks and
// statuses are few, and so an ingest writes one key for both.
func (s *Store) searchPrefixes(f *relay.EventFilter) ([][]byte, error) {
	switch {
	case f.DedupKey != "":
		return [][]byte{key(kDedup, relay.MarkKey(f.DedupKey))}, nil
	case f.JobID != "":
		return [][]byte{key(kJob, f.JobID)}, nil
	case f.LookID != "":
		return [][]byte{key(kLook, f.LookID)}, nil
	case f.AvatarID != "":
		return [][]byte{key(kAvatar, f.AvatarID)}, nil
	case f.Task != "" && f.Status != "":
		return [][]byte{key(kTaskStat, f.Task, f.Status)}, nil
	case f.Task != "":
		statuses, err := s.distinct(key(kTaskStat, f.Task))
		ps := make([][]byte, len(statuses))
		for i, st := range statuses {
			ps[i] = key(kTaskStat, f.Task, st)
		}
		return ps, err
	case f.Status != "":
		tasks, err := s.distinct([]byte{kTaskStat})
		ps := make([][]byte, len(tasks))
		for i, t := range tasks {
			ps[i] = key(kTaskStat, t, f.Status)
		}
		return ps, err
	}
	return [][]byte{{kEvent}}, nil
}

func dupKey(id string) []byte { return append([]byte{kDup}, id...) }

// dupValue is one duplicate received at t, as merged into a dupKey:
// a count and a time in unix nanoseconds, 8 bytes each (counterMerger).
func dupValue(t time.Time) []byte {
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 16), 1)
	return binary.LittleEndian.AppendUint64(b, uint64(t.UnixNano()))
}

func pausedKey(target string) []byte { return append([]byte{kPaused}, target...) }

// prefixEnd returns the first key after every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every key
}
