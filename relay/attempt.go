package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// attempt makes one delivery request and records its outcome.
func (t *target) attempt(c Claim, done func(error)) {
	d := c.Delivery
	n := d.Attempts + 1
	start := t.d.opts.Now()
	status, body, retryAfter, err := t.send(c.Event, n)
	if t.d.abortCtx.Err() != nil && err != nil {
		// Cut off by shutdown: the target may or may not have it, so it
		// goes again later, uncharged (at least once).
		done(errShutdown)
		if rerr := t.d.store.Release(context.WithoutCancel(t.d.ctx), start, d); rerr != nil {
			t.log.Error("release delivery", "event_id", d.EventID, "err", rerr)
		}
		return
	}
	elapsed := t.d.opts.Now().Sub(start)
	t.d.metrics.DeliveryDuration.WithLabelValues(t.cfg.Name).Observe(elapsed.Seconds())
	cl := classify(status, err)
	if cl == retryable {
		done(errTargetFailing)
	} else {
		done(nil)
	}
	a := &Attempt{Number: n, StartedAt: start, Duration: elapsed, Status: status, Body: body}
	d.Attempts, d.LastStatus, d.LastError, d.UpdatedAt = n, status, "", t.d.opts.Now()
	if err != nil {
		a.Error, d.LastError = err.Error(), err.Error()
	} else if cl != delivered {
		d.LastError = "HTTP " + strconv.Itoa(status)
	}
	outcome := ""
	switch cl {
	case delivered:
		d.State, outcome = Delivered, "delivered"
	case permanent:
		d.State, outcome = Dead, "dead"
	case retryable:
		d.State, outcome = t.schedule(&d, retryAfter)
	}
	t.finish(Outcome{Delivery: d, Attempt: a}, outcome)
	level := slog.LevelInfo
	if outcome != "delivered" {
		level = slog.LevelWarn
	}
	t.log.Log(t.d.ctx, level, "delivery attempt", "event_id", d.EventID, "attempt", n,
		"status", status, "outcome", outcome, "duration", elapsed, "err", d.LastError)
}

// schedule decides a failed attempt's fate: another attempt within the
// budget, or dead.
func (t *target) schedule(d *Delivery, retryAfter time.Duration) (State, string) {
	p := t.cfg.Retry
	used := d.Attempts - d.BudgetAttempts
	if used >= p.MaxAttempts {
		d.LastError += fmt.Sprintf(" (max_attempts %d reached)", p.MaxAttempts)
		return Dead, "dead"
	}
	next := d.UpdatedAt.Add(backoff(p, used, retryAfter, t.d.opts.Rand))
	if next.Sub(d.BudgetSince) > p.MaxAge.D() {
		d.LastError += fmt.Sprintf(" (max_age %s would pass before the next attempt)", p.MaxAge.D())
		return Dead, "dead"
	}
	d.NextAttemptAt = next
	return Pending, "retry"
}

func (t *target) finish(o Outcome, outcome string) {
	t.d.metrics.Deliveries.WithLabelValues(t.cfg.Name, outcome).Inc()
	if err := t.d.store.Complete(context.WithoutCancel(t.d.ctx), o); err != nil {
		t.log.Error("record delivery outcome; the delivery will be attempted again",
			"event_id", o.Delivery.EventID, "err", err)
	}
}

// send posts the event to the target and returns the answer's status, up to
// MaxAttemptBody bytes of its body, and the Retry-After it asked for.
func (t *target) send(ev *Event, attempt int) (status int, body string, retryAfter time.Duration, err error) {
	ctx, cancel := context.WithTimeout(t.d.abortCtx, t.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.URL, bytes.NewReader(ev.Payload))
	if err != nil {
		return 0, "", 0, err
	}
	h := req.Header
	for k, v := range t.cfg.Headers {
		h.Set(k, v)
	}
	h["Content-Type"] = []string{"application/json"}
	h["User-Agent"] = []string{t.d.opts.UserAgent}
	now := t.d.opts.Now()
	h["Webhook-Id"] = []string{ev.ID}
	h["Webhook-Timestamp"] = []string{strconv.FormatInt(now.Unix(), 10)}
	if t.signer != nil {
		h["Webhook-Signature"] = []string{t.signer.Sign(ev.ID, now, ev.Payload)}
	}
	h["Hooxrelay-Task"] = []string{ev.Task}
	h["Hooxrelay-Attempt"] = []string{strconv.Itoa(attempt)}
	resp, err := t.client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded && t.d.abortCtx.Err() == nil {
			return 0, "", 0, fmt.Errorf("timeout after %s", t.cfg.Timeout.D())
		}
		return 0, "", 0, trimURLError(err)
	}
	defer resp.Body.Close()
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, MaxAttemptBody))
	// Drain a little more so the connection can be reused.
	io.CopyN(io.Discard, resp.Body, 64<<10)
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), t.d.opts.Now())
	}
	return resp.StatusCode, string(buf), retryAfter, nil
}

// trimURLError drops the "Post <url>:" prefix, which repeats the target's
// configuration in every record.
func trimURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
