package relay

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay/shape"
)

// build shapes what every attempt of ev sends (the target's request block,
// or the payload as it came), or reports why the relay cannot build it, as
// a local *DeliveryError. It runs before the rate limiter and the breaker
// are asked, so that a bad event costs the target nothing.
func (t *target) build(ctx context.Context, ev *Event) (*shape.Request, *DeliveryError) {
	local := func(err error) *DeliveryError { return &DeliveryError{Target: t.set.Name, Local: true, Err: err} }
	if err := headerValueError("Hooxrelay-Task", ev.Task); err != nil {
		return nil, local(err)
	}
	for name, v := range t.set.Headers {
		if err := headerValueError(name, v); err != nil {
			return nil, local(err)
		}
	}
	out, err := t.shaper.Build(ctx, ev.Payload)
	if err != nil {
		return nil, local(err)
	}
	for _, f := range out.Header {
		if err := headerValueError(f.Name, f.Value); err != nil {
			return nil, local(err)
		}
	}
	return out, nil
}

// request builds the request of attempt n of ev, which sends out; token,
// when set, is the OAuth2 access token. Every header a target gets is set
// here, from its settings, out and the event.
func (t *target) request(ctx context.Context, ev *Event, out *shape.Request, n int, token string) (*http.Request, error) {
	req, err := t.newRequest(ctx, out.Method, out.URL, out.Body)
	if err != nil {
		return nil, err
	}
	now := t.opts.Now()
	sig := ""
	if t.signer != nil {
		sig = t.signer.Sign(ev.ID, now, out.Body)
	}
	if token != "" {
		token = "Bearer " + token
	}
	replay, _ := ctx.Value(replayKey{}).(string)
	setHeaders(req.Header, &t.set, out, stamp{
		ua: t.opts.UserAgent, id: ev.ID, unix: strconv.FormatInt(now.Unix(), 10),
		sig: sig, task: ev.Task, attempt: strconv.Itoa(n), token: token, replay: replay,
	})
	if tp, _ := ctx.Value(traceKey{}).(string); tp != "" {
		req.Header["Traceparent"] = []string{tp}
	}
	return req, nil
}

// parsedURL is a URL that attempts were sent to, parsed as
// http.NewRequest leaves it.
type parsedURL struct {
	raw string
	u   url.URL
}

// newRequest is http.NewRequestWithContext(ctx, method, raw,
// bytes.NewReader(body)), with the URL parsed once while it stays the same:
// most targets' URL is the same for every event, and parsing it was most of
// the cost of building a request.
func (t *target) newRequest(ctx context.Context, method, raw string, body []byte) (*http.Request, error) {
	p := t.lastURL.Load()
	if p == nil || p.raw != raw {
		u, err := url.Parse(raw)
		if err != nil {
			return http.NewRequestWithContext(ctx, method, raw, bytes.NewReader(body)) // for its error
		}
		p = &parsedURL{raw: raw, u: *u}
		// As NewRequest does: "host:" is "host".
		if h := u.Host; strings.LastIndex(h, ":") > strings.LastIndex(h, "]") {
			p.u.Host = strings.TrimSuffix(h, ":")
		}
		t.lastURL.Store(p)
	}
	req, err := http.NewRequestWithContext(ctx, method, "", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	*req.URL = p.u // the URL of "" is a fresh one
	req.Host = p.u.Host
	return req, nil
}

// stamp is what the headers of one attempt carry besides the shaped ones.
type stamp struct {
	ua, id, unix, sig, task, attempt, token, replay string
}

// replayKey carries, in an attempt's context, the id of the replay that
// requeued its delivery (Delivery.Replay), for Hooxrelay-Replay.
type replayKey struct{}

// setHeaders sets every header of an attempt on h: the target's static
// headers, then the shaped ones, then those of every delivery. A dry run
// calls it too, so that what it prints is what is sent.
func setHeaders(h http.Header, set *TargetSettings, out *shape.Request, s stamp) {
	for k, v := range set.Headers {
		h.Set(k, v)
	}
	// One backing array for every value: a header is one allocation less.
	vals := make([]string, 0, len(out.Header)+8)
	put := func(name, v string) {
		vals = append(vals, v)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	for _, f := range out.Header {
		put(f.Name, f.Value)
	}
	if s.token != "" {
		put("Authorization", s.token)
	}
	put("Content-Type", out.ContentType)
	put("User-Agent", s.ua)
	put("Webhook-Id", s.id)
	put("Webhook-Timestamp", s.unix)
	if s.sig != "" {
		put("Webhook-Signature", s.sig)
	}
	put("Hooxrelay-Task", s.task)
	put("Hooxrelay-Attempt", s.attempt)
	if s.replay != "" {
		put("Hooxrelay-Replay", s.replay)
	}
}

// Preview is the request a dry run shows: what the first attempt of an
// event to a target would send. Values that exist only at delivery time
// are shown in angle brackets, and secret values as ***.
type Preview struct {
	Method, URL string
	Header      http.Header
	Body        []byte
}

// PreviewRequest shapes the first attempt of ev to the target of ts
// without sending it or fetching a token. Its error is the reason the
// delivery would go dead at once.
func PreviewRequest(ctx context.Context, ts TargetSettings, ev *Event, userAgent string) (*Preview, error) {
	sh, err := shape.Compile(ts.URL, ts.Request)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	t := &target{set: ts, shaper: sh}
	out, de := t.build(ctx, ev)
	if de != nil {
		return nil, de.Err
	}
	s := stamp{
		ua: userAgent, id: ev.ID, unix: "<unix time of the attempt>",
		task: ev.Task, attempt: "1",
	}
	if len(ts.SigningSecrets) > 0 {
		s.sig = "v1,***"
	}
	if sh.OAuth2() {
		s.token = "Bearer ***"
	}
	p := &Preview{Method: out.Method, URL: out.URL, Header: http.Header{}, Body: out.Body}
	setHeaders(p.Header, &ts, out, s)
	for name, vs := range p.Header {
		if secretHeader(name) {
			for i, v := range vs {
				if scheme, _, ok := strings.Cut(v, " "); ok && (scheme == "Basic" || scheme == "Bearer") {
					vs[i] = scheme + " ***"
				} else {
					vs[i] = "***"
				}
			}
		}
	}
	return p, nil
}

// secretHeader reports whether a header's value is a secret by its name:
// credentials, tokens, keys, cookies.
func secretHeader(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"authorization", "token", "secret", "key", "password", "cookie", "credential"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
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
