package relay

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// request builds the request of attempt n of ev: every header a target
// gets is set here, from its settings and the event. It fails only when
// the request cannot be built at all; the attempt then goes dead, local.
func (t *target) request(ctx context.Context, ev *Event, n int) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.set.URL, bytes.NewReader(ev.Payload))
	if err != nil {
		return nil, err
	}
	h := req.Header
	for k, v := range t.set.Headers {
		h.Set(k, v)
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{t.opts.UserAgent}
	now := t.opts.Now()
	h["Webhook-Id"] = []string{ev.ID}
	h["Webhook-Timestamp"] = []string{strconv.FormatInt(now.Unix(), 10)}
	if t.signer != nil {
		h["Webhook-Signature"] = []string{t.signer.Sign(ev.ID, now, ev.Payload)}
	}
	h["Hooxrelay-Task"] = []string{ev.Task}
	h["Hooxrelay-Attempt"] = []string{strconv.Itoa(n)}
	return req, nil
}

// unbuildable reports why the relay cannot build the request for ev, as a
// local *DeliveryError, or nil. It runs before the rate limiter and the
// breaker are asked, so that a bad event costs the target nothing.
func (t *target) unbuildable(ev *Event) *DeliveryError {
	err := headerValueError("Hooxrelay-Task", ev.Task)
	for name, v := range t.set.Headers {
		if err != nil {
			break
		}
		err = headerValueError(name, v)
	}
	if err != nil {
		return &DeliveryError{Target: t.set.Name, Local: true, Err: err}
	}
	return nil
}

// headerValueError says why v is not a valid header value (RFC 9110: no
// control characters other than tab), or returns nil.
func headerValueError(name, v string) error {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return fmt.Errorf("header %s: the value has control character %#02x at byte %d", name, c, i)
		}
	}
	return nil
}
