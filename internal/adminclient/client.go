// Package adminclient is a client of a running relay's admin API, the
// endpoints under /api/v1 that docs/http.md describes: one typed method per
// endpoint, decoding the answers with the relay's own JSON types
// (relay.EventJSON, relay.TargetJSON, ...), so that a field renamed on one
// side breaks the build, not an operator.
//
// Its users are the admin commands of hooxrelay (status, targets, events,
// retry, ...): its errors are one line that says what to do next, in the
// terms of their flags (--admin, --token, --timeout).
package adminclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
)

// maxAnswer bounds what is read of one answer: a page of 1000 events, or
// one event with a large payload and its attempts.
const maxAnswer = 64 << 20

// Client calls the admin API of one relay, whose URL must be set. Set its
// fields before the first call; it is safe for concurrent use after, as
// long as Answer is.
type Client struct {
	// URL is the admin API's base, scheme://host[:port][/prefix]: the
	// relay's server.admin_listen. It must be set.
	URL string
	// Token is the bearer token, the relay's server.admin_token; "" sends
	// none.
	Token string
	// Timeout bounds each request, from sending it to reading the whole
	// answer; 0 leaves that to ctx.
	Timeout time.Duration
	// UserAgent is sent with each request; "" sends Go's default.
	UserAgent string
	// Answer, when not nil, is given the body of every successful answer
	// as received, once it is known to be the admin API's; an error it
	// returns is the call's. The --json of the commands prints it.
	Answer func(body []byte) error
}

// APIError is an answer of the admin API other than 2xx: it refused the
// token (401), or said what is wrong in its error body (relay.ErrorJSON),
// such as an unknown event (404), a retry of a delivery being attempted (409) or
// a store that does not answer (503). Its message is the API's, or for a
// 401 and a 503, what to do about it.
type APIError struct {
	StatusCode int
	Code       string // the answer's "error", e.g. "not_found"
	Message    string // the answer's "message"
	RetryAfter string // the Retry-After header of a 503, in seconds
}

func (e *APIError) Error() string {
	switch e.StatusCode {
	case http.StatusUnauthorized:
		return "the admin API refused the token (set --token or HOOXRELAY_ADMIN_TOKEN)"
	case http.StatusServiceUnavailable:
		msg := "the relay is unavailable: " + e.Message + "; try again"
		if e.RetryAfter != "" {
			msg += " in " + e.RetryAfter + "s"
		}
		return msg
	}
	return e.Message
}

// call sends a request to path (under /api/v1) and decodes a 2xx answer,
// which must be an object with the field key, into out.
func (c *Client) call(ctx context.Context, method, path string, q url.Values, key string, out any) error {
	return c.callWith(ctx, method, path, q, nil, key, out)
}

// callWith is call with a JSON body, when body is not nil.
func (c *Client) callWith(ctx context.Context, method, path string, q url.Values, body []byte, key string, out any) error {
	u := c.URL + "/api/v1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	reqCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		reqCtx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(reqCtx, method, u, rd)
	if err != nil {
		return fmt.Errorf("the admin API's URL %q: %w", c.URL, err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return c.sendError(ctx, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read the answer of the admin API at %s: %v", c.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		return c.statusError(method, path, resp, body)
	}
	// Something else than the relay may answer 2xx with JSON: check that
	// the field every answer of this call has is there.
	var fields map[string]json.RawMessage
	err = json.Unmarshal(body, &fields)
	if _, ok := fields[key]; err == nil && ok {
		err = json.Unmarshal(body, out)
	} else if err == nil {
		err = fmt.Errorf("no %q in it", key)
	}
	if err != nil {
		return fmt.Errorf("the answer of %s %s is not the admin API's (%v); is --admin the relay's admin_listen address?", method, u, err)
	}
	if c.Answer != nil {
		return c.Answer(body)
	}
	return nil
}

// sendError says why a request got no answer. ctx is the caller's, not
// the request's: when it ended, that is the reason.
func (c *Client) sendError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded) && c.Timeout > 0:
		return fmt.Errorf("the admin API at %s did not answer within %s (is the relay overloaded? raise --timeout)", c.URL, c.Timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the admin API at %s (is the relay running? is --admin right?)", c.URL)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // the URL is in the message already
	}
	return fmt.Errorf("cannot reach the admin API at %s: %v (is --admin right?)", c.URL, err)
}

// statusError turns an answer other than 2xx into an *APIError, or, when
// it is not the admin API's, an error that says so.
func (c *Client) statusError(method, path string, resp *http.Response, body []byte) error {
	var ans relay.ErrorJSON
	jsonErr := json.Unmarshal(body, &ans)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
	case jsonErr != nil || ans.Message == "":
		// Not the admin API, whose errors all say what is wrong.
		return fmt.Errorf("%s answered %s to %s /api/v1%s; is --admin the relay's admin_listen address?", c.URL, resp.Status, method, path)
	}
	e := &APIError{StatusCode: resp.StatusCode, Code: ans.Error, Message: ans.Message}
	if resp.StatusCode == http.StatusServiceUnavailable {
		e.RetryAfter = resp.Header.Get("Retry-After")
	}
	return e
}
