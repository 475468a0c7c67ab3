package redisstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Every record starts with the version of its layout, so that keys written
// by another version of hooxrelay are refused with a clear error instead of
// being misread.
const recordVersion = 1

// checkVersion returns the record without its version byte.
func checkVersion(b []byte) ([]byte, error) {
	switch {
	case len(b) == 0:
		return nil, errors.New("empty record")
	case b[0] != recordVersion:
		return nil, fmt.Errorf("record layout version %d is not one this hooxrelay reads (it reads %d): the keys were written by another version of hooxrelay", b[0], recordVersion)
	}
	return b[1:], nil
}

// A delivery record is the version, the state's code, then the delivery's
// JSON. The scripts read the state at its fixed place, the second byte
// (stateAt in Lua), and never parse the JSON.
var stateCodes = map[relay.State]byte{relay.Pending: 'p', relay.Delivered: 'd', relay.Dead: 'x'}

// luaStateAt is stateAt, for the scripts that need it: the state code of a
// delivery record.
const luaStateAt = `local function stateAt(rec) return string.sub(rec, 2, 2) end
`

func encodeDelivery(d *relay.Delivery) ([]byte, error) {
	code, ok := stateCodes[d.State]
	if !ok {
		return nil, fmt.Errorf("encode delivery %s: unknown state %q", d.ID(), d.State)
	}
	js, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s: %w", d.ID(), err)
	}
	return append([]byte{recordVersion, code}, js...), nil
}

func decodeDelivery(b []byte) (relay.Delivery, error) {
	var d relay.Delivery
	b, err := checkVersion(b)
	if err != nil {
		return d, err
	}
	if len(b) < 1 {
		return d, errors.New("corrupt delivery record")
	}
	return d, json.Unmarshal(b[1:], &d)
}

// An event is a hash: its metadata (the version, then the event's JSON
// without its targets) under "meta", its targets under "targets", joined by
// NUL, so that a script can add one, and its payload as received under
// "payload".
func encodeEvent(ev *relay.Event) (meta []byte, targets string, err error) {
	for _, t := range ev.Targets {
		if strings.IndexByte(t, 0) >= 0 {
			return nil, "", fmt.Errorf("encode event %s: target name %q holds a NUL byte", ev.ID, t)
		}
	}
	// The outer Targets, nil, hides the event's from the encoder.
	js, err := json.Marshal(struct {
		*relay.Event
		Targets []string `json:"targets,omitempty"`
	}{Event: ev})
	if err != nil {
		return nil, "", fmt.Errorf("encode event %s: %w", ev.ID, err)
	}
	return append([]byte{recordVersion}, js...), strings.Join(ev.Targets, "\x00"), nil
}

func decodeEvent(meta []byte, targets string) (*relay.Event, error) {
	b, err := checkVersion(meta)
	if err != nil {
		return nil, err
	}
	ev := new(relay.Event)
	if err := json.Unmarshal(b, ev); err != nil {
		return nil, err
	}
	if targets != "" {
		ev.Targets = strings.Split(targets, "\x00")
	}
	return ev, nil
}

// eventFields are the fields of an event hash that readEvent decodes, in
// its order; the payload may be left out.
var eventFields = []string{"meta", "targets", "payload"}

// readEvent decodes the values of HMGET of eventFields, or of all but the
// payload; ok is false when the event does not exist (it expired).
func readEvent(vals []any) (ev *relay.Event, ok bool, err error) {
	if len(vals) < 2 || vals[0] == nil {
		return nil, false, nil
	}
	meta, _ := vals[0].(string)
	targets, _ := vals[1].(string)
	if ev, err = decodeEvent([]byte(meta), targets); err != nil {
		return nil, false, err
	}
	if len(vals) > 2 {
		if p, ok := vals[2].(string); ok {
			ev.Payload = []byte(p)
		}
	}
	return ev, true, nil
}

// An attempt is the version, then the attempt's JSON.
func encodeAttempt(a *relay.Attempt) ([]byte, error) {
	js, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode attempt: %w", err)
	}
	return append([]byte{recordVersion}, js...), nil
}

func decodeAttempt(b []byte) (relay.Attempt, error) {
	var a relay.Attempt
	b, err := checkVersion(b)
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}
