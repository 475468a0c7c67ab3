package pebblestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Every record starts with the version of its layout, so that a store
// written by another version of hooxrelay is refused with a clear error
// instead of being misread. The fields follow in a fixed order: strings
// as a uvarint length and their bytes, integers and times as varints
// (times in unix nanoseconds, the zero time as math.MinInt64).
const recordVersion = 1

// Event records: version 2 added the event's trace context
// (relay.AppendTrace) after version 1's fields, version 3 the payload's ids
// after it, version 4 the trail (verify kind, chosen targets, routes) after
// those; eventVersion dropped the event id, which the key holds. Records of
// every earlier version are still read.
const (
	eventTraceVersion = 2
	eventIDsVersion   = 3
	eventTrailVersion = 4
	eventVersion      = 5
)

// Delivery records: version 2 added the replay that last requeued the
// delivery after version 1's fields; deliveryVersion dropped the event id
// and target, which the key holds. Records of every earlier version are
// still read.
const (
	deliveryReplayVersion = 2
	deliveryVersion       = 3
)

var errCorrupt = errors.New("corrupt record")

// checkVersion returns the record without its version byte.
func checkVersion(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty record")
	case b[0] != recordVersion:
		return nil, fmt.Errorf("record layout version %d is not one this hooxrelay reads (it reads %d): the store was written by another version of hooxrelay", b[0], recordVersion)
	}
	return b[1:], nil
}

func putString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func putTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, math.MinInt64)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

// reader takes fields off a record; the first failure sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) int() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errCorrupt
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time() time.Time {
	v := r.int()
	if v == math.MinInt64 {
		return time.Time{}
	}
	return time.Unix(0, v).UTC()
}

func (r *reader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// appendEvent lays an event out: its metadata, then the payload as
// received, to the end of the record. The id is the key's.
func appendEvent(b []byte, ev *relay.Event) []byte {
	b = append(b, eventVersion)
	for _, s := range [...]string{ev.Source, ev.Task, ev.Status, ev.DedupKey, ev.RemoteAddr} {
		b = putString(b, s)
	}
	b = relay.AppendTrace(b, ev.Trace)
	b = putString(putString(putString(b, ev.JobID), ev.AvatarID), ev.LookID)
	b = putString(b, ev.Trail.Verify)
	b = binary.AppendUvarint(b, uint64(ev.Trail.Chosen))
	b = binary.AppendUvarint(b, uint64(len(ev.Trail.Routes)))
	for _, r := range ev.Trail.Routes {
		b = putString(b, r)
	}
	b = putTime(b, ev.ReceivedAt)
	b = binary.AppendUvarint(b, uint64(len(ev.Headers)))
	for k, v := range ev.Headers {
		b = putString(putString(b, k), v)
	}
	b = binary.AppendUvarint(b, uint64(len(ev.Targets)))
	for _, t := range ev.Targets {
		b = putString(b, t)
	}
	return append(b, ev.Payload...)
}

// eventSize is an upper bound of the length of ev's record.
func eventSize(ev *relay.Event) int {
	n := 64 + relay.TraceLen + len(ev.ID) + len(ev.Source) + len(ev.Task) + len(ev.Status) + len(ev.DedupKey) + len(ev.RemoteAddr) + len(ev.Payload) +
		len(ev.JobID) + len(ev.AvatarID) + len(ev.LookID) + len(ev.Trail.Verify)
	for _, r := range ev.Trail.Routes {
		n += 10 + len(r)
	}
	for k, v := range ev.Headers {
		n += 20 + len(k) + len(v)
	}
	for _, t := range ev.Targets {
		n += 10 + len(t)
	}
	return n
}

// decodeEvent reverses appendEvent for the event id; the payload is copied
// only when withPayload is set, so b may be the store's memory.
func decodeEvent(id string, b []byte, withPayload bool) (*relay.Event, error) {
	if len(b) == 0 {
		return nil, errors.New("empty record")
	}
	version := b[0]
	if version < recordVersion || version > eventVersion {
		return nil, fmt.Errorf("event record layout version %d is not one this hooxrelay reads (it reads %d to %d): the store was written by another version of hooxrelay", version, recordVersion, eventVersion)
	}
	r := reader{b: b[1:]}
	if version < eventVersion {
		r.string() // the id, as in the key
	}
	ev := &relay.Event{ID: id, Source: r.string(), Task: r.string(), Status: r.string(), DedupKey: r.string(), RemoteAddr: r.string()}
	if version >= eventTraceVersion {
		ev.Trace = r.trace()
	}
	if version >= eventIDsVersion {
		ev.JobID, ev.AvatarID, ev.LookID = r.string(), r.string(), r.string()
	}
	if version >= eventTrailVersion {
		ev.Trail.Verify, ev.Trail.Chosen = r.string(), int(r.uint())
		if n := r.uint(); n > 0 && r.err == nil {
			if n > uint64(len(r.b)) {
				return nil, errCorrupt
			}
			ev.Trail.Routes = make([]string, n)
			for i := range ev.Trail.Routes {
				ev.Trail.Routes[i] = r.string()
			}
		}
	}
	ev.ReceivedAt = r.time()
	if n := r.uint(); n > 0 && r.err == nil {
		if n > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		ev.Headers = make(map[string]string, n)
		for range n {
			k := r.string()
			ev.Headers[k] = r.string()
		}
	}
	if n := r.uint(); n > 0 && r.err == nil {
		if n > uint64(len(r.b)) {
			return nil, errCorrupt
		}
		ev.Targets = make([]string, n)
		for i := range ev.Targets {
			ev.Targets[i] = r.string()
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if withPayload {
		ev.Payload = append([]byte(nil), r.b...)
	}
	return ev, nil
}

// stateCode is a state's byte in records and keys.
func stateCode(s relay.State) (byte, bool) {
	switch s {
	case relay.Pending:
		return 'p', true
	case relay.Delivered:
		return 'd', true
	case relay.Dead:
		return 'x', true
	}
	return 0, false
}

func stateOf(c byte) (relay.State, bool) {
	switch c {
	case 'p':
		return relay.Pending, true
	case 'd':
		return relay.Delivered, true
	case 'x':
		return relay.Dead, true
	}
	return "", false
}

// appendDelivery lays a delivery out, its state first so that a reader
// that only wants the state reads one byte. The event id and target are
// the key's.
func appendDelivery(b []byte, d *relay.Delivery) ([]byte, error) {
	code, ok := stateCode(d.State)
	if !ok {
		return nil, fmt.Errorf("encode delivery %s: unknown state %q", d.ID(), d.State)
	}
	b = append(b, deliveryVersion, code)
	b = binary.AppendVarint(b, int64(d.Attempts))
	b = putTime(b, d.NextAttemptAt)
	b = binary.AppendVarint(b, int64(d.LastStatus))
	b = putString(b, d.LastError)
	b = binary.AppendVarint(b, int64(d.BudgetAttempts))
	b = putTime(b, d.BudgetSince)
	b = putTime(b, d.UpdatedAt)
	return putString(b, d.Replay), nil
}

// checkDeliveryVersion returns a delivery record without its version byte,
// and the version.
func checkDeliveryVersion(b []byte) ([]byte, byte, error) {
	switch {
	case len(b) == 0:
		return nil, 0, errors.New("empty record")
	case b[0] < recordVersion || b[0] > deliveryVersion:
		return nil, 0, fmt.Errorf("delivery record layout version %d is not one this hooxrelay reads (it reads %d to %d): the store was written by another version of hooxrelay", b[0], recordVersion, deliveryVersion)
	}
	return b[1:], b[0], nil
}

// decodeDelivery reads the record of the delivery id into d.
func decodeDelivery(id string, b []byte, d *relay.Delivery) error {
	b, version, err := checkDeliveryVersion(b)
	if err != nil {
		return err
	}
	r := reader{b: b}
	st, ok := stateOf(r.byte())
	if !ok {
		return errCorrupt
	}
	*d = relay.Delivery{State: st}
	if version < deliveryVersion {
		d.EventID, d.Target = r.string(), r.string()
	} else if d.EventID, d.Target, ok = relay.SplitDeliveryID(id); !ok {
		return errCorrupt
	}
	d.Attempts, d.NextAttemptAt, d.LastStatus, d.LastError = int(r.int()), r.time(), int(r.int()), r.string()
	d.BudgetAttempts, d.BudgetSince, d.UpdatedAt = int(r.int()), r.time(), r.time()
	if version >= deliveryReplayVersion {
		d.Replay = r.string()
	}
	return r.err
}

// deliveryState reads the state of a delivery record.
func deliveryState(b []byte) (relay.State, error) {
	b, _, err := checkDeliveryVersion(b)
	if err != nil {
		return "", err
	}
	if len(b) == 0 {
		return "", errCorrupt
	}
	st, ok := stateOf(b[0])
	if !ok {
		return "", errCorrupt
	}
	return st, nil
}

// attemptVersion is the layout of attempt records written now: version
// 1's fields, then the wait before the attempt and the replay. Version 1
// records are still read.
const attemptVersion = 2

func appendAttempt(b []byte, a *relay.Attempt) []byte {
	b = append(b, attemptVersion)
	b = binary.AppendVarint(b, int64(a.Number))
	b = putTime(b, a.StartedAt)
	b = binary.AppendVarint(b, int64(a.Duration))
	b = binary.AppendVarint(b, int64(a.Status))
	b = putString(putString(b, a.Error), a.Body)
	b = putString(b, a.Waited)
	b = binary.AppendVarint(b, int64(a.WaitedFor))
	return putString(b, a.Replay)
}

func decodeAttempt(b []byte) (relay.Attempt, error) {
	if len(b) == 0 {
		return relay.Attempt{}, errors.New("empty record")
	}
	version := b[0]
	if version != recordVersion && version != attemptVersion {
		return relay.Attempt{}, fmt.Errorf("attempt record layout version %d is not one this hooxrelay reads (it reads %d and %d): the store was written by another version of hooxrelay", version, recordVersion, attemptVersion)
	}
	r := reader{b: b[1:]}
	a := relay.Attempt{Number: int(r.int()), StartedAt: r.time(), Duration: time.Duration(r.int()), Status: int(r.int()), Error: r.string(), Body: r.string()}
	if version == attemptVersion {
		a.Waited, a.WaitedFor, a.Replay = r.string(), time.Duration(r.int()), r.string()
	}
	return a, r.err
}

// trace reads what relay.AppendTrace wrote.
func (r *reader) trace() string {
	if r.err != nil {
		return ""
	}
	tp, rest, ok := relay.ReadTrace(r.b)
	if !ok {
		r.err = errCorrupt
		return ""
	}
	r.b = rest
	return tp
}
