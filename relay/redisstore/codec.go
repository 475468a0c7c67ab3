package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// layoutVersion is the version of the key layout and of the records'
// encoding. It is stored in the layout key (CheckLayout) and is the first
// byte of every event and delivery record, so that keys written by
// another version of hooxrelay are refused instead of misread.
const layoutVersion = 2

// eventTraceVersion is the first byte of event records written now:
// layoutVersion's fields, with the event's trace context
// (relay.AppendTrace) after the remote address. The keys are as in
// layoutVersion, which the layout key keeps; records of layoutVersion,
// written before traces were kept, are still read, and a relay that
// predates this one refuses these records with its version error.
const eventTraceVersion = 3

// eventIDsVersion added the payload's job, avatar and look ids after the
// trace context; eventTrailVersion, the first byte of event records
// written now, adds the trail (verify kind, chosen targets, routes) after
// them. Records of every earlier version are still read.
const (
	eventIDsVersion   = 4
	eventTrailVersion = 5
)

// eventCompactVersion, the first byte of event records written now, has
// eventTrailVersion's fields in a shorter form: a dedup key made of the
// task, the payload's ids and the status (every known task's) is stored
// as one NUL byte and rebuilt from them (dedupField), and header values
// have codes for the common ones (putHeaderValue). A pending event is
// mostly its record in Redis's memory.
const eventCompactVersion = 6

// The records are binary and compact: Redis keeps every pending event in
// memory, and JSON's field names and RFC 3339 times would double its size.
// Strings are a uvarint length and the bytes; counts are uvarints; times
// are a varint of nanoseconds since the millisecond in the event's id (most
// are close to it), and 0 stands for the zero time, 1 for that
// millisecond itself.

func putString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// epoch is the time in event id's, in Unix nanoseconds, from which its
// records count their times; 0 for an id without one.
func epoch(id string) int64 {
	if t, ok := relay.EventTime(id); ok {
		return t.UnixNano()
	}
	return 0
}

func putTime(b []byte, base int64, t time.Time) []byte {
	switch d := t.UnixNano() - base; {
	case t.IsZero():
		return binary.AppendVarint(b, 0)
	case d >= 0:
		return binary.AppendVarint(b, d+1)
	default:
		return binary.AppendVarint(b, d)
	}
}

// reader decodes a record; the first error sticks. base is the epoch of
// its times.
type reader struct {
	b    []byte
	base int64
	err  error
}

var errCorrupt = errors.New("corrupt record")

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err, r.b = errCorrupt, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) int() int { return int(r.uvarint()) }

func (r *reader) string() string { return r.stringOf(r.uvarint()) }

// stringOf reads n bytes as a string.
func (r *reader) stringOf(n uint64) string {
	if n > uint64(len(r.b)) {
		r.err, r.b = errCorrupt, nil
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *reader) time() time.Time {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err, r.b = errCorrupt, nil
		return time.Time{}
	}
	r.b = r.b[n:]
	switch {
	case v == 0:
		return time.Time{}
	case v > 0:
		v--
	}
	return time.Unix(0, r.base+v).UTC()
}

// A delivery record is the version, the state's code, then its fields;
// the event id and target are its key's and field's. The scripts read the
// state at its fixed place, the second byte (stateAt in Lua).
var stateCodes = map[relay.State]byte{relay.Pending: 'p', relay.Delivered: 'd', relay.Dead: 'x'}

// luaStateAt is stateAt, for the scripts that need it: the state code of a
// delivery record.
const luaStateAt = `local function stateAt(rec) return string.sub(rec, 2, 2) end
`

// deliveryReplayVersion is the first byte of delivery records written now:
// layoutVersion's fields, then the replay that last requeued the delivery.
// Records of layoutVersion, written before replays, are still read.
const deliveryReplayVersion = 3

// deliveryNewVersion is the first byte of the record of a delivery as an
// ingest makes it (relay.NewDelivery), on layout 3 only (relays of layout
// 2 do not read it): pending, every count and text empty, and the three
// times one, the event's receive time, kept once. Two of them pending
// per event, that is 22 bytes less of Redis's memory each.
const deliveryNewVersion = 4

// encodeNewDelivery encodes d as a deliveryNewVersion record, if it is
// one as NewDelivery makes it.
func encodeNewDelivery(d *relay.Delivery) ([]byte, bool) {
	if d.State != relay.Pending || d.Attempts != 0 || d.BudgetAttempts != 0 || d.LastStatus != 0 || d.LastError != "" || d.Replay != "" ||
		!d.BudgetSince.Equal(d.NextAttemptAt) || !d.UpdatedAt.Equal(d.NextAttemptAt) {
		return nil, false
	}
	return putTime([]byte{deliveryNewVersion, stateCodes[relay.Pending]}, epoch(d.EventID), d.NextAttemptAt), true
}

func encodeDelivery(d *relay.Delivery) ([]byte, error) {
	code, ok := stateCodes[d.State]
	if !ok {
		return nil, fmt.Errorf("encode delivery %s: unknown state %q", d.ID(), d.State)
	}
	b := make([]byte, 0, 40+len(d.LastError)+len(d.Replay))
	b = append(b, deliveryReplayVersion, code)
	b = binary.AppendUvarint(b, uint64(d.Attempts))
	b = binary.AppendUvarint(b, uint64(d.BudgetAttempts))
	b = binary.AppendUvarint(b, uint64(d.LastStatus))
	base := epoch(d.EventID)
	b = putTime(b, base, d.NextAttemptAt)
	b = putTime(b, base, d.BudgetSince)
	b = putTime(b, base, d.UpdatedAt)
	return putString(putString(b, d.LastError), d.Replay), nil
}

func decodeDelivery(eventID, target string, b []byte) (relay.Delivery, error) {
	d := relay.Delivery{EventID: eventID, Target: target}
	if len(b) == 0 {
		return d, errors.New("empty record")
	}
	version := b[0]
	if version < layoutVersion || version > deliveryNewVersion {
		return d, fmt.Errorf("delivery record layout version %d is not one this hooxrelay reads (it reads %d to %d): the keys were written by another version of hooxrelay", version, layoutVersion, deliveryNewVersion)
	}
	b = b[1:]
	if len(b) < 1 {
		return d, errCorrupt
	}
	for s, c := range stateCodes {
		if c == b[0] {
			d.State = s
		}
	}
	if d.State == "" {
		return d, fmt.Errorf("unknown state code %q", b[0])
	}
	r := &reader{b: b[1:], base: epoch(eventID)}
	if version == deliveryNewVersion {
		if d.State != relay.Pending {
			return d, errCorrupt
		}
		t := r.time()
		d.NextAttemptAt, d.BudgetSince, d.UpdatedAt = t, t, t
		if len(r.b) > 0 && r.err == nil {
			return d, errCorrupt
		}
		return d, r.err
	}
	d.Attempts, d.BudgetAttempts, d.LastStatus = r.int(), r.int(), r.int()
	d.NextAttemptAt, d.BudgetSince, d.UpdatedAt = r.time(), r.time(), r.time()
	d.LastError = r.string()
	if version == deliveryReplayVersion {
		d.Replay = r.string()
	}
	return d, r.err
}

// An event is two keys. Its record, a string, is the version, then
// source, task, status, dedup key, the key of its mark when that is not
// the dedup key (relay.MarkKey), remote address, the headers (a count,
// then names and values, sorted), the receive time, and last the payload
// as received, up to the end. Its deliveries' hash holds the rest, the
// parts that scripts change (see the package comment).
func encodeEvent(ev *relay.Event) ([]byte, error) { return encodeEventAs(ev, eventCompactVersion) }

// encodeEventAs encodes ev as records of version (eventTrailVersion or
// eventCompactVersion) are.
func encodeEventAs(ev *relay.Event, version byte) ([]byte, error) {
	for _, t := range ev.Targets {
		if strings.IndexByte(t, 0) >= 0 {
			return nil, fmt.Errorf("encode event %s: target name %q holds a NUL byte", ev.ID, t)
		}
	}
	b := make([]byte, 0, 64+relay.TraceLen+len(ev.DedupKey)+len(ev.Trail.Verify)+16*len(ev.Trail.Routes)+len(ev.JobID)+len(ev.AvatarID)+len(ev.LookID)+len(ev.Payload)+48*len(ev.Headers))
	compact := version >= eventCompactVersion
	b = append(b, version)
	mark := relay.MarkKey(ev.DedupKey)
	if mark == ev.DedupKey {
		mark = ""
	}
	dedup := ev.DedupKey
	if compact {
		dedup = dedupField(ev)
	}
	for _, s := range []string{ev.Source, ev.Task, ev.Status, dedup, mark, ev.RemoteAddr} {
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
	b = binary.AppendUvarint(b, uint64(len(ev.Headers)))
	names := make([]string, 0, len(ev.Headers))
	for k := range ev.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if code := slices.Index(headerCodes, k); code >= 0 {
			b = append(b, 0, byte(code))
		} else {
			b = putString(b, k)
		}
		if compact {
			b = putHeaderValue(b, ev.Headers[k])
		} else {
			b = putString(b, ev.Headers[k])
		}
	}
	b = putTime(b, epoch(ev.ID), ev.ReceivedAt)
	return append(b, ev.Payload...), nil
}

// headerCodes are the names of the headers the relay keeps (relay's
// keptHeaders), each stored as an empty name and its index.
var headerCodes = []string{"Content-Type", "User-Agent", "X-Request-Id", "X-Forwarded-For"}

// valueCodes are common header values, each stored as a length of 0 and
// its index; any other value as its length plus one and the bytes.
var valueCodes = []string{"application/json", "application/json; charset=utf-8", "application/json;charset=utf-8"}

func putHeaderValue(b []byte, v string) []byte {
	if code := slices.Index(valueCodes, v); code >= 0 {
		return append(b, 0, byte(code))
	}
	return append(binary.AppendUvarint(b, uint64(len(v))+1), v...)
}

func (r *reader) headerValue() string {
	n := r.uvarint()
	switch {
	case r.err != nil:
		return ""
	case n > 0:
		return r.stringOf(n - 1)
	case len(r.b) == 0 || int(r.b[0]) >= len(valueCodes):
		r.err, r.b = errCorrupt, nil
		return ""
	}
	v := valueCodes[r.b[0]]
	r.b = r.b[1:]
	return v
}

// derivedDedup is what dedupField stores for a dedup key that is the
// task, the payload's ids and the status joined by ':' (relay's
// ParsePayload makes those for every known task).
const derivedDedup = "\x00"

// dedupField is the dedup key as an event record stores it: derivedDedup
// for one that dedupFrom rebuilds, else the key, after a 1 byte when it
// starts with a 0 or 1 byte.
func dedupField(ev *relay.Event) string {
	switch {
	case ev.DedupKey != "" && ev.DedupKey == dedupFrom(ev.Task, ev.JobID, ev.AvatarID, ev.LookID, ev.Status):
		return derivedDedup
	case ev.DedupKey != "" && ev.DedupKey[0] <= 1:
		return "\x01" + ev.DedupKey
	}
	return ev.DedupKey
}

// dedupFrom is the dedup key of a known task: the task, the ids that are
// set, and the status, joined by ':'; "" without an id.
func dedupFrom(task, job, avatar, look, status string) string {
	ids := make([]string, 0, 5)
	ids = append(ids, task)
	for _, id := range []string{job, avatar, look} {
		if id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 1 {
		return ""
	}
	return strings.Join(append(ids, status), ":")
}

// The members of the queues, held sets and indexes are event ids without
// their "evt_": they are most of what a pending event costs Redis, and 26
// bytes fit a smaller allocation than 30. An id without it (none that the
// relay makes) is kept whole after a "~".
func memberOf(eid string) string {
	if m, ok := strings.CutPrefix(eid, "evt_"); ok {
		return m
	}
	return "~" + eid
}

func eidOf(m string) string {
	if e, ok := strings.CutPrefix(m, "~"); ok {
		return e
	}
	return "evt_" + m
}

// luaMembers are memberOf and eidOf, for the scripts.
const luaMembers = `local function memberOf(eid)
  if string.sub(eid, 1, 4) == 'evt_' then
    return string.sub(eid, 5)
  end
  return '~' .. eid
end
local function eidOf(m)
  if string.sub(m, 1, 1) == '~' then
    return string.sub(m, 2)
  end
  return 'evt_' .. m
end
`

// luaEventHead is eventHead(record): the source, task, status and the
// mark's key of an event record, for the scripts that need them; nil when
// record is only the start of one and ends before them (the dedup scan
// reads only a record's first bytes). A length under 128 is one byte;
// longer ones take more. The dedup key of an eventCompactVersion record
// is rebuilt as dedupFrom does, from the ids after the remote address and
// the trace context (a length byte and that many bytes).
const luaEventHead = `local function eventHead(rec)
  local out, pos = {}, 2
  for i = 1, 9 do
    local len, mul, b = 0, 1, 128
    while b >= 128 do
      b = string.byte(rec, pos)
      if not b then
        return nil
      end
      pos = pos + 1
      len = len + (b % 128) * mul
      mul = mul * 128
    end
    if pos + len - 1 > #rec then
      return nil
    end
    out[i] = string.sub(rec, pos, pos + len - 1)
    pos = pos + len
    if i == 5 and (string.byte(rec, 1) < 6 or out[5] ~= '' or out[4] ~= '\0') then
      break
    end
    if i == 6 then
      local skip = string.byte(rec, pos)
      if not skip then
        return nil
      end
      pos = pos + 1 + skip
    end
  end
  if string.byte(rec, 1) >= 6 and out[5] == '' then
    local first = string.byte(out[4], 1)
    if out[4] == '\0' then
      local ids = {out[2]}
      for i = 7, 9 do
        if out[i] ~= '' then
          ids[#ids + 1] = out[i]
        end
      end
      ids[#ids + 1] = out[3]
      out[4] = table.concat(ids, ':')
    elseif first == 1 then
      out[4] = string.sub(out[4], 2)
    end
  end
  if out[5] == '' then
    out[5] = out[4]
  end
  return out[1], out[2], out[3], out[5]
end
`

// decodeEvent decodes the record of event id; targets are its deliveries'
// hash's, NUL-joined. The payload is left out unless withPayload.
func decodeEvent(id string, rec []byte, targets string, withPayload bool) (*relay.Event, error) {
	if len(rec) == 0 {
		return nil, errors.New("empty record")
	}
	version := rec[0]
	if version < layoutVersion || version > eventCompactVersion {
		return nil, fmt.Errorf("event record layout version %d is not one this hooxrelay reads (it reads %d to %d): the keys were written by another version of hooxrelay", version, layoutVersion, eventCompactVersion)
	}
	r := &reader{b: rec[1:], base: epoch(id)}
	ev := &relay.Event{ID: id, Source: r.string(), Task: r.string(), Status: r.string(), DedupKey: r.string()}
	r.string() // the mark's key
	ev.RemoteAddr = r.string()
	if version >= eventTraceVersion && r.err == nil {
		tp, rest, ok := relay.ReadTrace(r.b)
		if !ok {
			return nil, errCorrupt
		}
		ev.Trace, r.b = tp, rest
	}
	if version >= eventIDsVersion {
		ev.JobID, ev.AvatarID, ev.LookID = r.string(), r.string(), r.string()
	}
	if version >= eventTrailVersion {
		ev.Trail.Verify, ev.Trail.Chosen = r.string(), r.int()
		if n := r.int(); n > 0 && r.err == nil {
			if n > len(r.b) {
				return nil, errCorrupt
			}
			ev.Trail.Routes = make([]string, n)
			for i := range ev.Trail.Routes {
				ev.Trail.Routes[i] = r.string()
			}
		}
	}
	if n := r.int(); n > 0 && r.err == nil {
		ev.Headers = make(map[string]string, min(n, 64))
		for range n {
			k := r.string()
			if k == "" && len(r.b) > 0 && int(r.b[0]) < len(headerCodes) {
				k, r.b = headerCodes[r.b[0]], r.b[1:]
			}
			if version >= eventCompactVersion {
				ev.Headers[k] = r.headerValue()
			} else {
				ev.Headers[k] = r.string()
			}
		}
	}
	if version >= eventCompactVersion {
		switch {
		case ev.DedupKey == derivedDedup:
			ev.DedupKey = dedupFrom(ev.Task, ev.JobID, ev.AvatarID, ev.LookID, ev.Status)
		case ev.DedupKey != "" && ev.DedupKey[0] == 1:
			ev.DedupKey = ev.DedupKey[1:]
		}
	}
	ev.ReceivedAt = r.time()
	if r.err != nil {
		return nil, r.err
	}
	if withPayload {
		ev.Payload = slices.Clone(r.b)
	}
	if targets != "" {
		ev.Targets = strings.Split(targets, "\x00")
	}
	return ev, nil
}

// An attempt is appended to its delivery's history field as a uvarint
// length and then its fields, so that a script only concatenates. Its
// time counts from the epoch of its event. The first layout ends after
// the body; attemptWaitVersion, after it, marks the wait before the
// attempt and the replay, written only when one is set (most attempts
// neither waited nor were replayed, and Redis keeps them in memory).
const attemptWaitVersion = 2

func encodeAttempt(eventID string, a *relay.Attempt) []byte {
	// One allocation: the fields after room for the longest length, which
	// then goes right before them.
	const room = binary.MaxVarintLen64
	b := make([]byte, room, room+48+len(a.Error)+len(a.Body)+len(a.Waited)+len(a.Replay))
	b = binary.AppendUvarint(b, uint64(a.Number))
	b = putTime(b, epoch(eventID), a.StartedAt)
	b = binary.AppendVarint(b, int64(a.Duration))
	b = binary.AppendUvarint(b, uint64(a.Status))
	b = putString(b, a.Error)
	b = putString(b, a.Body)
	if a.Waited != "" || a.WaitedFor != 0 || a.Replay != "" {
		b = putString(append(b, attemptWaitVersion), a.Waited)
		b = binary.AppendVarint(b, int64(a.WaitedFor))
		b = putString(b, a.Replay)
	}
	var n [room]byte
	k := binary.PutUvarint(n[:], uint64(len(b)-room))
	copy(b[room-k:], n[:k])
	return b[room-k:]
}

// decodeHistory decodes the history field of a delivery of event id:
// attempts, oldest first.
func decodeHistory(id string, b []byte) ([]relay.Attempt, error) {
	var out []relay.Attempt
	r := &reader{b: b}
	base := epoch(id)
	for len(r.b) > 0 && r.err == nil {
		one := &reader{b: []byte(r.string()), base: base}
		a := relay.Attempt{Number: one.int(), StartedAt: one.time()}
		d, n := binary.Varint(one.b)
		if n <= 0 {
			return out, errCorrupt
		}
		one.b = one.b[n:]
		a.Duration = time.Duration(d)
		a.Status, a.Error, a.Body = one.int(), one.string(), one.string()
		if len(one.b) > 0 && one.err == nil {
			if one.b[0] != attemptWaitVersion {
				return out, fmt.Errorf("attempt layout version %d is not one this hooxrelay reads (it reads 1 and %d): the keys were written by another version of hooxrelay", one.b[0], attemptWaitVersion)
			}
			one.b = one.b[1:]
			a.Waited = one.string()
			w, n := binary.Varint(one.b)
			if n <= 0 {
				return out, errCorrupt
			}
			one.b = one.b[n:]
			a.WaitedFor, a.Replay = time.Duration(w), one.string()
		}
		if one.err != nil {
			return out, one.err
		}
		out = append(out, a)
	}
	return out, r.err
}
