package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/spf13/cobra"
)

func newSendCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "send --url URL [--secret S] [PAYLOAD_FILE | -]",
		GroupID: groupTry,
		Short:   "send one webhook and print the answer",
		Long: `Sends one webhook to a relay (or any URL) and prints the answer's status and
body. The payload is read from PAYLOAD_FILE, or from standard input with "-";
without either, a sample video_generate webhook with a fresh job_id is sent.

With --secret, the request is signed as a source's verify kind expects, so
that a live relay can be tested end to end: a token in the header (or in
the query parameter "token" when the source names no header), an
HMAC-SHA256 of the body, or Standard Webhooks headers. The kind and header
come from --kind and --header, or from the source in --config whose path
is the URL's path (--source picks one by name); only that source's name,
path, verify.kind and verify.header are read from the file, so the rest of
its ${NAME} variables need not be set.
Exit status 1 when the answer is not 2xx.`,
		Example: `  hooxrelay send --url http://127.0.0.1:8080/hooks/hoox
  HOOXRELAY_SEND_SECRET=$TOKEN hooxrelay send --url https://relay.example.com/hooks/hoox --config hooxrelay.yaml payload.json`,
		Args: maxOneArg("PAYLOAD_FILE"),
	}
	f := cmd.Flags()
	url := f.String("url", "", "the `URL` to POST the webhook to, e.g. http://127.0.0.1:8080/hooks/hoox (required)")
	secret := f.String("secret", "", "sign the request with `SECRET` (or set HOOXRELAY_SEND_SECRET, which keeps it out of the process list)")
	kind := f.String("kind", "", "verify `KIND` to sign for: token, hmac-sha256 or standard-webhooks (default: the source's, from --config)")
	header := f.String("header", "", "the `HEADER` that carries the token or signature (default: the source's, from --config)")
	cfgPath := f.String("config", "", "take the source's verify kind and header from the config `FILE`")
	cmd.MarkFlagFilename("config", "yaml", "yml")
	sourceName := f.String("source", "", "the source `NAME` in --config to sign for (default: the one whose path is the URL's path)")
	timeout := f.Duration("timeout", 10*time.Second, "give up after this long")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if *url == "" {
			return usagef("--url is required, e.g. --url http://127.0.0.1:8080/hooks/hoox")
		}
		if *secret == "" {
			*secret = os.Getenv("HOOXRELAY_SEND_SECRET")
		}
		if *secret != "" {
			if err := signingFor(kind, header, *cfgPath, *sourceName, *url); err != nil {
				return err
			}
		}
		var arg string
		if len(args) > 0 {
			arg = args[0]
		}
		body, err := readPayloadArg(arg, e.stdin)
		if err != nil {
			return err
		}
		if body == nil {
			body = []byte(fmt.Sprintf(`{"task":"video_generate","job_id":"run_%d","status":"completed","result":{"video_id":"video_demo","cost":5}}`, time.Now().UnixNano()))
		}
		ctx, cancel := context.WithTimeout(cmd.Context(), *timeout)
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
	return cmd
}

// signingFor fills in the verify kind and header to sign with: those given
// as flags, else those of the source in the config at cfgPath. It says
// which flag is missing when neither has them.
func signingFor(kind, header *string, cfgPath, sourceName, url string) error {
	needHeader := func() bool { return *header == "" && *kind == config.VerifyHMACSHA256 }
	if *kind != "" && !needHeader() {
		return checkKind(*kind)
	}
	if cfgPath == "" {
		if *kind == "" {
			return usagef("--secret needs --kind (token, hmac-sha256 or standard-webhooks), or --config to take it from the source")
		}
		return usagef("--kind hmac-sha256 needs --header, the header the source reads the signature from (its verify.header), or --config to take it from the source")
	}
	src, err := sourceFor(cfgPath, sourceName, url)
	if err != nil {
		return err
	}
	if *kind == "" {
		*kind = src.Verify.Kind
	}
	if *header == "" {
		*header = src.Verify.Header
	}
	switch {
	case *kind == config.VerifyNone:
		return usagef("source %q of %s does not verify requests (verify.kind is none); send without --secret", src.Name, cfgPath)
	case needHeader():
		return usagef("source %q of %s has no verify.header for kind hmac-sha256; pass --header", src.Name, cfgPath)
	}
	return checkKind(*kind)
}

func checkKind(kind string) error {
	switch kind {
	case config.VerifyToken, config.VerifyHMACSHA256, config.VerifyStandardWebhooks:
		return nil
	}
	return usagef("--kind %q: want token, hmac-sha256 or standard-webhooks", kind)
}

// sourceFor returns the source of the config at path named name, or else
// the one whose path is url's path, or else the only one.
func sourceFor(path, name, rawURL string) (config.Source, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return config.Source{}, usagef("config file %q not found; check --config", path)
		}
		return config.Source{}, usagef("read config: %v", err)
	}
	sources, err := config.ReadSources(data, path)
	if err != nil {
		return config.Source{}, usageError{err}
	}
	u, _ := neturl.Parse(rawURL)
	for _, s := range sources {
		if (name != "" && s.Source.Name == name) || (name == "" && u != nil && s.Source.Path == u.Path) || (name == "" && len(sources) == 1) {
			if s.Err != nil {
				return config.Source{}, usageError{s.Err}
			}
			return s.Source, nil
		}
	}
	if name != "" {
		return config.Source{}, usagef("--source %q: no such source in %s", name, path)
	}
	return config.Source{}, usagef("no source of %s has the path of --url %q; name one with --source", path, rawURL)
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
