package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// Every record starts with the version of its layout, so that a store
// written by another version of hooxrelay is refused with a clear error
// instead of being misread.
const recordVersion = 1

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

// encodeEvent lays an event out as the version, a 4-byte length, the JSON
// of its metadata, then the payload as received: one value per event keeps
// a commit's dirty pages few.
func encodeEvent(ev *relay.Event) ([]byte, error) {
	meta, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	b := make([]byte, 5, 5+len(meta)+len(ev.Payload))
	b[0] = recordVersion
	binary.BigEndian.PutUint32(b[1:], uint32(len(meta)))
	b = append(b, meta...)
	return append(b, ev.Payload...), nil
}

// decodeEvent reverses encodeEvent; the payload is copied out of the
// transaction's memory only when withPayload is set.
func decodeEvent(b []byte, withPayload bool) (*relay.Event, error) {
	b, err := checkVersion(b)
	if err != nil {
		return nil, err
	}
	if len(b) < 4 || int(binary.BigEndian.Uint32(b)) > len(b)-4 {
		return nil, errors.New("corrupt event record")
	}
	n := 4 + int(binary.BigEndian.Uint32(b))
	ev := new(relay.Event)
	if err := json.Unmarshal(b[4:n], ev); err != nil {
		return nil, err
	}
	if withPayload {
		ev.Payload = bytes.Clone(b[n:])
	}
	return ev, nil
}

// A delivery record is a 10-byte head, the version, the state and the due
// time as 8-byte unix nanoseconds, then the delivery's JSON. The head lets
// the start-up scan rebuild the queue without decoding every record, and
// spares a separate index of pending deliveries (and its writes) on the
// hot path.
const deliveryHeadLen = 10

var stateCodes = map[relay.State]byte{relay.Pending: 'p', relay.Delivered: 'd', relay.Dead: 'x'}

func encodeDelivery(d *relay.Delivery) ([]byte, error) {
	code, ok := stateCodes[d.State]
	if !ok {
		return nil, fmt.Errorf("encode delivery %s: unknown state %q", d.ID(), d.State)
	}
	js, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("encode delivery %s: %w", d.ID(), err)
	}
	b := make([]byte, deliveryHeadLen, deliveryHeadLen+len(js))
	b[0], b[1] = recordVersion, code
	binary.BigEndian.PutUint64(b[2:], uint64(d.NextAttemptAt.UnixNano()))
	return append(b, js...), nil
}

func decodeDelivery(b []byte, d *relay.Delivery) error {
	if _, _, err := deliveryHead(b); err != nil {
		return err
	}
	return json.Unmarshal(b[deliveryHeadLen:], d)
}

// deliveryHead reads the state and due time of a delivery record.
func deliveryHead(b []byte) (relay.State, time.Time, error) {
	b, err := checkVersion(b)
	if err != nil {
		return "", time.Time{}, err
	}
	if len(b) < deliveryHeadLen-1 {
		return "", time.Time{}, errors.New("corrupt delivery record")
	}
	due := time.Unix(0, int64(binary.BigEndian.Uint64(b[1:])))
	switch b[0] {
	case 'p':
		return relay.Pending, due, nil
	case 'd':
		return relay.Delivered, due, nil
	case 'x':
		return relay.Dead, due, nil
	}
	return "", time.Time{}, fmt.Errorf("unknown state code %q", b[0])
}

// An attempt record is the version, then the attempt's JSON.
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
