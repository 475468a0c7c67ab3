package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/adminclient"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The admin commands (status, targets, events, event, deliveries, retry,
// retry-dead, pause and resume, in admincli*.go) call a running relay's
// admin API through internal/adminclient and print its answers; this file
// holds what they share.

const defaultAdminURL = "http://127.0.0.1:9090"

// adminHelp ends the description of every admin command.
const adminHelp = `

The relay is reached at --admin, the server.admin_listen address of its
config, with the bearer token server.admin_token when one is set. Exit
status 1 when the relay cannot be reached or refuses the request.`

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

// client checks the flags and returns a client for the API they name. With
// --json, it prints every answer as received, indented: the command then
// prints nothing else.
func (o *adminOpts) client(e *env) (*adminclient.Client, error) {
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
	c := &adminclient.Client{
		URL:       strings.TrimSuffix(u.String(), "/"),
		Token:     token,
		Timeout:   o.timeout,
		UserAgent: "hooxrelay-cli/" + versionString(),
	}
	if o.json {
		c.Answer = func(body []byte) error { return printJSON(e.stdout, body) }
	}
	return c, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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
func limitFlag(f *pflag.FlagSet, p *int, what string) {
	f.IntVar(p, "limit", relay.DefaultLimit, fmt.Sprintf("list at most this many %s (1 to %d)", what, relay.MaxLimit))
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
