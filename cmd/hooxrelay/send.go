package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

func runSend(ctx context.Context, args []string, e *env) error {
	fs := newFlags(e, "send", "--url URL [--secret S] [PAYLOAD_FILE | -]", `Sends one webhook to a relay (or any URL) and prints the answer's status and
body. The payload is read from PAYLOAD_FILE, or from standard input with "-";
without either, a sample video_generate webhook with a fresh job_id is sent.
Exit status 1 when the answer is not 2xx.`)
	url := fs.String("url", "", "where to POST the webhook, e.g. http://127.0.0.1:8080/hooks/hoox (required)")
	secret := fs.String("secret", "", "sign the request as the source's verify kind expects (not supported yet: inbound verification comes with the security work)")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *url == "" {
		return usagef("--url is required, e.g. --url http://127.0.0.1:8080/hooks/hoox")
	}
	if *secret != "" {
		return usagef("--secret is not supported yet: this build verifies no inbound signatures (verify.kind none)")
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
