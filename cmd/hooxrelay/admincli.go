package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The admin commands (status, targets, events, event, deliveries, retry,
// retry-dead, pause and resume, in admincli*.go) are clients of a running
// relay's admin API (docs/http.md); this file holds what they share. They
// decode its answers with the relay's own JSON types, so that a field
// renamed on one side breaks the build, not an operator.

const defaultAdminURL = "http://127.0.0.1:9090"

// adminHelp ends the description of every admin command.
const adminHelp = `

The relay is reached at --admin, the server.admin_listen address of its
config, with the bearer token server.admin_token when one is set. Exit
status 1 when the relay cannot be reached or refuses the request.`

// maxAnswer bounds what is read of one answer of the admin API: a page of
// 1000 events, or one event with a large payload and its attempts.
const maxAnswer = 64 << 20

// adminOpts are the flags every admin command takes.
type adminOpts struct {
	admin, token string
	json         bool
	timeout      time.Duration
}

// adminCmd is an admin command: use, short and long as cobra has them
// (long without adminHelp, which is added), and the admin flags.
func adminCmd(use, short, long string, args cobra.PositionalArgs) (*cobra.Command, *adminOpts) {
	cmd := &cobra.Command{Use: use, GroupID: groupAdmin, Short: short, Long: long + adminHelp, Args: args}
	o := &adminOpts{}
	f := cmd.Flags()
	f.StringVar(&o.admin, "admin", "", "`URL` of the relay's admin API, its server.admin_listen (default $HOOXRELAY_ADMIN_URL, else "+defaultAdminURL+")")
	f.StringVar(&o.token, "token", "", "bearer `TOKEN` of the admin API, server.admin_token (default $HOOXRELAY_ADMIN_TOKEN, which keeps it out of the process list)")
	f.BoolVar(&o.json, "json", false, "print the API's JSON answer, indented, instead of a table")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on a request to the admin API after this long")
	return cmd, o
}

// client checks the flags and returns a client for the API they name.
func (o *adminOpts) client() (*adminClient, error) {
	raw := strings.TrimSpace(o.admin)
	if raw == "" {
		raw = orDefault(os.Getenv("HOOXRELAY_ADMIN_URL"), defaultAdminURL)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw // "127.0.0.1:9090", as admin_listen is written
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--admin %q: want the admin API's URL, e.g. %s", raw, defaultAdminURL)
	}
	if o.timeout <= 0 {
		return nil, usagef("--timeout must be positive, got %s", o.timeout)
	}
	token := o.token
	if token == "" {
		token = os.Getenv("HOOXRELAY_ADMIN_TOKEN")
	}
	return &adminClient{base: strings.TrimSuffix(u.String(), "/"), token: token, timeout: o.timeout, http: &http.Client{}}, nil
}

// adminClient calls the admin API of one relay.
type adminClient struct {
	base    string // scheme://host[:port][/prefix], no trailing slash
	token   string
	timeout time.Duration // of each request
	http    *http.Client
}

// call sends a request to path (under /api/v1) and decodes a 2xx answer,
// which must be an object with the field key, into out. It returns the
// answer's body as sent.
func (c *adminClient) call(ctx context.Context, method, path string, q url.Values, key string, out any) ([]byte, error) {
	u := c.base + "/api/v1" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	reqCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, method, u, nil)
	if err != nil {
		return nil, usagef("--admin %q: %v", c.base, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "hooxrelay-cli/"+versionString())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return nil, fmt.Errorf("the admin API at %s did not answer within %s (is the relay overloaded? raise --timeout)", c.base, c.timeout)
		case errors.Is(err, syscall.ECONNREFUSED):
			return nil, fmt.Errorf("cannot reach the admin API at %s (is the relay running? is --admin right?)", c.base)
		}
		return nil, fmt.Errorf("cannot reach the admin API at %s: %v (is --admin right?)", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("read the answer of the admin API at %s: %v", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.statusError(method, path, resp, body)
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
		return nil, fmt.Errorf("the answer of %s %s is not the admin API's (%v); is --admin the relay's admin_listen address?", method, u, err)
	}
	return body, nil
}

// statusError turns an answer other than 2xx into one line that says what
// to do.
func (c *adminClient) statusError(method, path string, resp *http.Response, body []byte) error {
	var ans relay.ErrorJSON
	jsonErr := json.Unmarshal(body, &ans)
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return errors.New("the admin API refused the token (set --token or HOOXRELAY_ADMIN_TOKEN)")
	case jsonErr != nil || ans.Message == "":
		// Not the admin API, whose errors all say what is wrong.
		return fmt.Errorf("%s answered %s to %s /api/v1%s; is --admin the relay's admin_listen address?", c.base, resp.Status, method, path)
	case resp.StatusCode == http.StatusServiceUnavailable:
		msg := "the relay is unavailable: " + ans.Message + "; try again"
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			msg += " in " + ra + "s"
		}
		return errors.New(msg)
	}
	return errors.New(ans.Message)
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// fetch calls the API into out and, with --json, prints its answer as
// received; done reports that printing it was the whole job.
func (o *adminOpts) fetch(ctx context.Context, e *env, method, path string, q url.Values, key string, out any) (done bool, err error) {
	c, err := o.client()
	if err != nil {
		return false, err
	}
	raw, err := c.call(ctx, method, path, q, key, out)
	if err != nil || !o.json {
		return false, err
	}
	return true, printJSON(e.stdout, raw)
}

// printJSON writes an answer of the API indented.
func printJSON(w io.Writer, raw []byte) error {
	var b bytes.Buffer
	if err := json.Indent(&b, bytes.TrimSpace(raw), "", "  "); err != nil {
		return fmt.Errorf("the admin API's answer is not JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// limitFlag adds --limit, which the API takes from 1 to relay.MaxLimit.
func limitFlag(f *pflag.FlagSet, what string) *int {
	return f.Int("limit", relay.DefaultLimit, fmt.Sprintf("list at most this many %s (1 to %d)", what, relay.MaxLimit))
}

func checkLimit(n int) error {
	if n < 1 || n > relay.MaxLimit {
		return usagef("--limit must be from 1 to %d, got %d", relay.MaxLimit, n)
	}
	return nil
}

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// timeString formats t as RFC 3339 in UTC, or "-" for the zero time.
func timeString(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// oneLine shortens s to at most n runes on one line, or "-" when empty.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func statusString(code int) string {
	if code == 0 {
		return "-"
	}
	return strconv.Itoa(code)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
