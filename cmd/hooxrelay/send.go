package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay/verify"
)

func runSend(ctx context.Context, args []string, e *env) error {
	fs := newFlags(e, "send", "--url URL [--secret S [--kind K] [--header H] [--config FILE [--source NAME]]] [PAYLOAD_FILE | -]", `Sends one webhook to a relay (or any URL) and prints the answer's status and
body. The payload is read from PAYLOAD_FILE, or from standard input with "-";
without either, a sample video_generate webhook with a fresh job_id is sent.

With --secret, the request is signed as a source's verify kind expects, so
that a live relay can be tested end to end: a token in the header (or in
the query parameter "token" when the source names no header), an
HMAC-SHA256 of the body, or Standard Webhooks headers. The kind and header
come from --kind and --header, or from the source in --config whose path
is the URL's path (--source picks one by name).
Exit status 1 when the answer is not 2xx.`)
	url := fs.String("url", "", "where to POST the webhook, e.g. http://127.0.0.1:8080/hooks/hoox (required)")
	secret := fs.String("secret", "", "sign the request with this secret (or set HOOXRELAY_SEND_SECRET, which keeps it out of the process list)")
	kind := fs.String("kind", "", "verify kind to sign for: token, hmac-sha256 or standard-webhooks (default: the source's, from --config)")
	header := fs.String("header", "", "header that carries the token or signature (default: the source's, from --config)")
	cfgPath := fs.String("config", "", "config file to take the source's verify kind and header from")
	sourceName := fs.String("source", "", "source of --config to sign for (default: the one whose path is the URL's path)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *url == "" {
		return usagef("--url is required, e.g. --url http://127.0.0.1:8080/hooks/hoox")
	}
	if *secret == "" {
		*secret = os.Getenv("HOOXRELAY_SEND_SECRET")
	}
	if *secret != "" && (*kind == "" || (*header == "" && *kind == config.VerifyHMACSHA256)) {
		if *cfgPath == "" {
			return usagef("--secret needs --kind (token, hmac-sha256 or standard-webhooks), or --config to take it from the source")
		}
		v, err := sourceVerify(*cfgPath, *sourceName, *url)
		if err != nil {
			return err
		}
		if *kind == "" {
			*kind = v.Kind
		}
		if *header == "" {
			*header = v.Header
		}
	}
	if fs.NArg() > 1 {
		return usagef("send takes at most one PAYLOAD_FILE, got %q", fs.Args())
	}
	body, err := readPayloadArg(fs.Arg(0), e.stdin)
	if err != nil {
		return err
	}
	if body == nil {
		body = []byte(fmt.Sprintf(`{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"video_demo","cost":5}}`, time.Now().UnixNano()))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *url, bytes.NewReader(body))
	if err != nil {
		return usagef("--url %q: %v", *url, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hooxrelay-send/"+versionString())
	if *secret != "" {
		if err := verify.SignRequest(*kind, *header, *secret, req, body, time.Now()); err != nil {
			return usagef("--secret: %v", err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("send to %q: %w (is the relay running?)", *url, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	fmt.Fprintf(e.stdout, "%s\n%s\n", resp.Status, strings.TrimSpace(string(answer)))
	if resp.StatusCode/100 != 2 {
		return errSilent{1}
	}
	return nil
}

// sourceVerify returns the verify settings of the source of the config at
// path named name, or else the one whose path is url's path, or else the
// only one.
func sourceVerify(path, name, rawURL string) (config.Verify, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return config.Verify{}, err
	}
	u, _ := neturl.Parse(rawURL)
	for _, s := range cfg.Sources {
		if (name != "" && s.Name == name) || (name == "" && u != nil && s.Path == u.Path) {
			return s.Verify, nil
		}
	}
	if name == "" && len(cfg.Sources) == 1 {
		return cfg.Sources[0].Verify, nil
	}
	if name != "" {
		return config.Verify{}, usagef("--source %q: no such source in %s", name, path)
	}
	return config.Verify{}, usagef("no source of %s has the path of --url %q; name one with --source", path, rawURL)
}

// readPayloadArg reads a payload from a file name, or stdin for "-"; it
// returns nil for "".
func readPayloadArg(arg string, stdin io.Reader) ([]byte, error) {
	switch arg {
	case "":
		return nil, nil
	case "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read payload from stdin: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, usagef("read payload: %v", err)
	}
	return b, nil
}
