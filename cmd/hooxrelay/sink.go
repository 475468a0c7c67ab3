package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/hooxrelay/hooxrelay/internal/sink"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/spf13/cobra"
)

func newSinkCmd(e *env) *cobra.Command {
	s := &sink.Sink{Name: "sink", Log: e.stdout}
	cmd := &cobra.Command{
		Use:     "sink [--listen ADDR]",
		GroupID: groupTry,
		Short:   "run a local test target that logs every request (can fail, slow down or flap)",
		Long: `Runs a local test target (a local RequestBin): it answers every POST and
prints one line per request (time, status, Webhook-Id, task, attempt, size).
Use it as a target's url to watch deliveries, and its flags to make it fail,
slow down or flap so that retries and the circuit breaker can be seen.

--verbose adds each request's headers and body below its line: exactly what
a target receives. --verify-secret checks each request's Webhook-Signature
against the target's signing_secret, as a target should, and adds
signature=valid or signature=invalid (with the reason) to the line.`,
		Example: `  hooxrelay sink --listen 127.0.0.1:9101 --verbose
  hooxrelay sink --listen 127.0.0.1:9101 --fail-first 3
  HOOXRELAY_SINK_SECRET=whsec_... hooxrelay sink --listen 127.0.0.1:9101`,
		Args: noArgs,
	}
	f := cmd.Flags()
	listen := f.String("listen", "127.0.0.1:9101", "listen on `ADDR` (host:port)")
	f.StringVar(&s.Name, "name", "sink", "the `NAME` printed on each line")
	f.BoolVarP(&s.Verbose, "verbose", "v", false, "print each request's headers and body too")
	secrets := f.StringArray("verify-secret", nil, "check Webhook-Signature with `SECRET` (the target's signing_secret; repeat it for two during a rotation), or set HOOXRELAY_SINK_SECRET")
	f.Int64Var(&s.FailFirst, "fail-first", 0, "fail the first `N` requests")
	f.Float64Var(&s.FailRate, "fail-rate", 0, "fail this `SHARE` of requests (0 to 1)")
	f.IntVar(&s.FailStatus, "fail-status", 503, "the `STATUS` code of a failure")
	f.DurationVar(&s.Delay, "delay", 0, "wait this long before answering (e.g. 2s)")
	f.DurationVar(&s.Flap, "flap", 0, "alternate: fail for this long, then succeed for this long, and so on")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if s.FailRate < 0 || s.FailRate > 1 {
			return usagef("--fail-rate %v: want a share between 0 and 1", s.FailRate)
		}
		if s.FailStatus < 100 || s.FailStatus > 599 {
			return usagef("--fail-status %d: want an HTTP status code", s.FailStatus)
		}
		if len(*secrets) == 0 && os.Getenv("HOOXRELAY_SINK_SECRET") != "" {
			*secrets = []string{os.Getenv("HOOXRELAY_SINK_SECRET")}
		}
		if len(*secrets) > 0 {
			v, err := verify.New(verify.Settings{Kind: verify.KindStandardWebhooks, Secrets: *secrets})
			if err != nil {
				// err names verify.secrets[i]; here it is the i-th --verify-secret.
				_, msg, _ := strings.Cut(err.Error(), ": ")
				return usagef("--verify-secret: %s (the target's signing_secret)", msg)
			}
			s.Verifier = v
		}
		ctx := cmd.Context()
		var wg sync.WaitGroup
		addr, err := s.Start(ctx, *listen, &wg)
		if err != nil {
			return fmt.Errorf("--listen %q: %w", *listen, err)
		}
		fmt.Fprintf(e.stderr, "sink %q listening on http://%s (Ctrl-C to stop)\n", s.Name, addr)
		<-ctx.Done()
		wg.Wait()
		if errors.Is(ctx.Err(), context.Canceled) {
			return nil
		}
		return ctx.Err()
	}
	return cmd
}
