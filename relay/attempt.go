package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/shape"
)

// DeliveryError is why an attempt did not deliver. Target names the
// target; Status is its answer, 0 when none came. Retryable errors (a
// network error, a timeout, 408, 425, 429, 5xx) are the target failing:
// they are retried and count against its breaker. Local errors are the
// relay's own (it could not build the request): the target was not asked,
// so the delivery goes dead at once, uncharged, and the breaker is not told.
// Anything else (3xx, another 4xx) is the target saying no: dead.
type DeliveryError struct {
	Target    string
	Status    int
	Retryable bool
	Local     bool
	Err       error // the cause; nil when the answer's status says it all
}

func (e *DeliveryError) Error() string {
	switch {
	case e.Local:
		return "request not sent: " + e.Err.Error()
	case e.Err != nil:
		return e.Err.Error()
	}
	return "HTTP " + strconv.Itoa(e.Status)
}

func (e *DeliveryError) Unwrap() error { return e.Err }

// reply is what a target answered an attempt: its status, up to
// MaxAttemptBody bytes of its body, and the delay a 429 or 503 asked for.
type reply struct {
	status     int
	body       string
	retryAfter time.Duration
}

// statusError is what a target's answer with status means: nil when it
// delivered. A target with success statuses delivers on those alone; any
// other 2xx is then its way of saying no.
func (t *target) statusError(status int) *DeliveryError {
	if len(t.set.Success) > 0 {
		if slices.Contains(t.set.Success, status) {
			return nil
		}
		if classify(status, nil) == delivered {
			return &DeliveryError{Target: t.set.Name, Status: status,
				Err: fmt.Errorf("HTTP %d is not a success status of this target (success: %v)", status, t.set.Success)}
		}
	}
	switch cl := classify(status, nil); cl {
	case delivered:
		return nil
	default:
		return &DeliveryError{Target: t.set.Name, Status: status, Retryable: cl == retryable}
	}
}

// attempt makes attempt n of a claim and records its outcome, under actx,
// which ends only when a shutdown cuts attempts off; done tells the
// breaker; why and waited are what held it back before (waitOf).
func (t *target) attempt(actx context.Context, c Claim, out *shape.Request, done func(error), why string, waited time.Duration) {
	d := c.Delivery
	n := d.Attempts + 1
	start := t.opts.Now()
	tp, endSpan := t.opts.Tracer.Attempt(actx, c.Event, t.set.Name, n)
	ctx := context.WithValue(actx, traceKey{}, tp)
	if d.Replay != "" {
		ctx = context.WithValue(ctx, replayKey{}, d.Replay)
	}
	r, de := t.send(ctx, c.Event, out, n)
	if de != nil {
		endSpan(r.status, de.Error())
	} else {
		endSpan(r.status, "")
	}
	if de != nil && r.status == 0 && actx.Err() != nil {
		// Cut off by shutdown: the target may or may not have it, so it
		// goes again later, uncharged (at least once).
		done(errShutdown)
		if err := t.store.Release(context.WithoutCancel(actx), start, d); err != nil {
			t.log.Error("release delivery", "event_id", d.EventID, "err", err)
		}
		return
	}
	switch {
	case de == nil:
		done(nil)
	case de.Local:
		done(errLocal)
		t.kill(actx, c, de)
		return
	case de.Retryable:
		done(errTargetFailing)
	default:
		done(nil)
	}
	elapsed := t.opts.Now().Sub(start)
	t.duration.Observe(elapsed.Seconds())
	a := &Attempt{Number: n, StartedAt: start, Duration: elapsed, Status: r.status, Body: r.body, Waited: why, WaitedFor: waited, Replay: d.Replay}
	d.Attempts, d.LastStatus, d.LastError, d.UpdatedAt = n, r.status, "", t.opts.Now()
	outcome := ""
	switch {
	case de == nil:
		d.State, outcome = Delivered, "delivered"
	case de.Retryable:
		d.LastError = de.Error()
		d.State, outcome = t.schedule(&d, r.retryAfter)
	default:
		d.LastError = de.Error()
		d.State, outcome = Dead, "dead"
	}
	if de != nil && de.Err != nil {
		a.Error = de.Err.Error()
	}
	t.finish(actx, Outcome{Delivery: d, Attempt: a}, outcome)
	level := slog.LevelInfo
	if outcome != "delivered" {
		level = slog.LevelWarn
	}
	if !t.log.Enabled(actx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("event_id", d.EventID), slog.Int("attempt", n),
		slog.Int("status", r.status), slog.String("outcome", outcome), slog.Duration("duration", elapsed)}
	if d.LastError != "" {
		attrs = append(attrs, slog.String("err", d.LastError))
	}
	t.log.LogAttrs(actx, level, "delivery attempt", attrs...)
}

// send makes attempt n of ev, which sends out: it builds the request,
// posts it, and says what came back and why it did not deliver (nil when
// it did). With OAuth2, a 401 fetches a new token and the request is made
// once more within the attempt: tokens can be revoked before they expire.
func (t *target) send(actx context.Context, ev *Event, out *shape.Request, n int) (reply, *DeliveryError) {
	ctx, cancel := context.WithTimeout(actx, t.set.Timeout)
	defer cancel()
	if t.tokens == nil {
		return t.post(ctx, actx, ev, out, n, "")
	}
	token, err := t.tokens.Token(ctx, "")
	if err != nil {
		return reply{}, &DeliveryError{Target: t.set.Name, Retryable: true, Err: err}
	}
	r, de := t.post(ctx, actx, ev, out, n, token)
	if r.status != http.StatusUnauthorized {
		return r, de
	}
	if token, err = t.tokens.Token(ctx, token); err != nil {
		return reply{}, &DeliveryError{Target: t.set.Name, Retryable: true, Err: err}
	}
	return t.post(ctx, actx, ev, out, n, token)
}

// post makes one request of attempt n under ctx, the attempt's timeout
// within actx.
func (t *target) post(ctx, actx context.Context, ev *Event, out *shape.Request, n int, token string) (reply, *DeliveryError) {
	req, err := t.request(ctx, ev, out, n, token)
	if err != nil {
		return reply{}, &DeliveryError{Target: t.set.Name, Local: true, Err: err}
	}
	// The transport itself: the client would copy the headers for
	// redirects, which are never followed (newClient), and wrap errors in
	// a *url.Error that repeats the target's URL in every record.
	if u := req.URL.User; u != nil && req.Header.Get("Authorization") == "" {
		// As the client does; the config refuses such URLs anyway.
		pw, _ := u.Password()
		req.SetBasicAuth(u.Username(), pw)
	}
	resp, err := t.client.Transport.RoundTrip(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded && actx.Err() == nil {
			err = fmt.Errorf("timeout after %s", t.set.Timeout)
		}
		return reply{}, &DeliveryError{Target: t.set.Name, Retryable: true, Err: err}
	}
	defer resp.Body.Close()
	buf := bodyBufs.Get().(*[MaxAttemptBody]byte)
	n, rerr := io.ReadFull(resp.Body, buf[:])
	r := reply{status: resp.StatusCode, body: string(buf[:n])}
	bodyBufs.Put(buf)
	if rerr == nil {
		// Drain a little more so the connection can be reused.
		io.CopyN(io.Discard, resp.Body, 64<<10)
	}
	if r.status == http.StatusTooManyRequests || r.status == http.StatusServiceUnavailable {
		r.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), t.opts.Now())
	}
	return r, t.statusError(r.status)
}

// bodyBufs hold the start of targets' answers while they are read.
var bodyBufs = sync.Pool{New: func() any { return new([MaxAttemptBody]byte) }}

// kill completes a claim as dead without an attempt: the request was never
// made, so nothing is charged to the target.
func (t *target) kill(actx context.Context, c Claim, why error) {
	d := c.Delivery
	d.State, d.LastError, d.UpdatedAt = Dead, why.Error(), t.opts.Now()
	t.finish(actx, Outcome{Delivery: d}, "dead")
	t.log.Warn("delivery dead without an attempt", "event_id", d.EventID, "err", d.LastError)
}

// schedule decides a failed attempt's fate: another attempt within the
// budget, or dead.
func (t *target) schedule(d *Delivery, retryAfter time.Duration) (State, string) {
	p := t.set.Retry
	used := d.Attempts - d.BudgetAttempts
	if used >= p.MaxAttempts {
		d.LastError += fmt.Sprintf(" (max_attempts %d reached)", p.MaxAttempts)
		return Dead, "dead"
	}
	next := d.UpdatedAt.Add(backoff(p, used, retryAfter, t.opts.Rand))
	if next.Sub(d.BudgetSince) > p.MaxAge {
		d.LastError += fmt.Sprintf(" (max_age %s would pass before the next attempt)", p.MaxAge)
		return Dead, "dead"
	}
	d.NextAttemptAt = next
	return Pending, "retry"
}

// finish hands an outcome to the store, counts it, and tells OnDead of a
// delivery that went dead. A store that queues outcomes is not waited for:
// Run waits for the writes instead (t.writes).
func (t *target) finish(actx context.Context, o Outcome, outcome string) {
	t.outcomes[outcome].Inc()
	// Not cancelled by the end of claiming, only by the shutdown timeout:
	// a store that does not answer must not hold the shutdown past it.
	if oq, ok := t.store.(OutcomeQueue); ok && t.writes != nil {
		t.writes.add()
		err := oq.QueueComplete(actx, o, func(err error) {
			t.recorded(o, err)
			t.writes.done()
			if o.Delivery.State == Pending {
				t.kick() // the retry's due time is known to the store now
			}
		})
		if err != nil {
			t.recorded(o, err)
			t.writes.done()
		}
		return
	}
	t.recorded(o, t.store.Complete(actx, o))
}

// recorded logs a failed write of o, or tells OnDead of a dead delivery.
func (t *target) recorded(o Outcome, err error) {
	if err != nil {
		t.log.Error("record delivery outcome; the delivery will be attempted again",
			"event_id", o.Delivery.EventID, "err", err)
		return
	}
	if o.Delivery.State == Dead && t.opts.OnDead != nil {
		t.opts.OnDead(o.Delivery)
	}
}
