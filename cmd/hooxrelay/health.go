package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultHealthURL is /healthz on the default server.admin_listen.
const defaultHealthURL = "http://127.0.0.1:9090/healthz"

func newHealthCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "health [--url URL]",
		GroupID: groupAdmin,
		Short:   "exit 0 if a relay's /healthz (or --url) answers 2xx, 1 otherwise: a health check for images without a shell",
		Long: `Asks a running relay whether it is healthy: GETs --url and exits 0 on a 2xx
answer, 1 otherwise (any other status, a redirect, a refused connection, a
timeout) with a one-line reason on stderr. It needs no shell and no curl, so
a distroless image can use it as its health check:

  HEALTHCHECK CMD ["/hooxrelay", "health", "--url", "http://127.0.0.1:9090/healthz"]

/healthz (the default) answers 200 while the process runs: a liveness check.
/readyz answers 503 while the store is unreachable or the relay is shutting
down: point --url at it to ask whether the relay should get traffic.
Redirects are not followed and no proxy is used. Exit status 2 means a bad
flag.`,
		Args: noArgs,
	}
	target := cmd.Flags().String("url", defaultHealthURL, "the `URL` to GET: /healthz or /readyz on server.admin_listen")
	timeout := cmd.Flags().Duration("timeout", 5*time.Second, "give up after this long (connecting, sending and reading the answer)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return health(cmd.Context(), e, *target, *timeout) }
	return cmd
}

func health(ctx context.Context, e *env, target string, timeout time.Duration) error {
	if timeout <= 0 {
		return usagef("--timeout must be positive, got %s", timeout)
	}
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usagef("--url %q: want an http:// or https:// URL such as %s", target, defaultHealthURL)
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return usagef("--url %q: %v", target, err)
	}
	req.Header.Set("User-Agent", "hooxrelay-health/"+versionString())
	client := &http.Client{
		// A fresh transport without a proxy: a health check asks this
		// address, not whatever HTTPS_PROXY the environment names.
		Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("health: GET %s: no answer within %s", u.Redacted(), timeout)
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is already in the message
		}
		return fmt.Errorf("health: GET %s: %v (is hooxrelay serve running with server.admin_listen at that address?)", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("health: GET %s: %s", u.Redacted(), resp.Status)
		if len(bytes.TrimSpace(body)) > 0 {
			msg += ": " + oneLine(strings.ToValidUTF8(string(body), "?"), 200)
		}
		return errors.New(msg)
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", u.Redacted(), resp.Status)
	return nil
}
