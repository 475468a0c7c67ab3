package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

func newRouteCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "route [--requests] [PAYLOAD_FILE | -]",
		GroupID: groupRelay,
		Short:   "dry run: print the dedup key, routes and targets of a payload",
		Long: `Dry run: validates one payload as the ingress would, and prints its dedup
key, the routes it matches and the targets it would be delivered to. Reads the
payload from PAYLOAD_FILE, or from standard input with "-" or no argument.
Exit status 1 when the payload would be refused (400).

With --requests it also prints, for each of those targets, the exact request
its first attempt would make: method, URL, headers and body, as the target's
request block shapes them. Secret values (auth, and headers whose name says
token, key, secret, password, cookie or credential) are shown as ***, and
what only exists at delivery time (the event id, the timestamp) in angle
brackets. Nothing is sent, and no OAuth2 token is fetched. A target whose
request cannot be built shows why; its delivery would go dead at once.`,
		Example: `  hooxrelay route --config hooxrelay.yaml payload.json
  hooxrelay route --config deploy/examples/legacy.yaml --requests payload.json
  echo '{"task":"video_generate","job_id":"run_1","status":"completed"}' | hooxrelay route --config hooxrelay.yaml`,
		Args: maxOneArg("PAYLOAD_FILE"),
	}
	cfgPath := configFlag(cmd.Flags())
	cmd.MarkFlagFilename("config", "yaml", "yml")
	requests := cmd.Flags().Bool("requests", false, "also print the exact request each target would get (method, URL, headers with secrets as ***, body)")
	cmd.RunE = func(c *cobra.Command, args []string) error {
		cfg, err := loadConfig(cfgPath())
		if err != nil {
			return err
		}
		table, err := compileRoutes(cfg)
		if err != nil {
			return usageError{err}
		}
		arg := "-"
		if len(args) > 0 {
			arg = args[0]
		}
		body, err := readPayloadArg(arg, e.stdin)
		if err != nil {
			return err
		}
		p, err := relay.ParsePayload(body)
		if err != nil {
			fmt.Fprintln(e.stdout, refusal(err))
			return errSilent{1}
		}
		m := table.Match(p.Task, p.Status, p.Doc)
		kind := "known task"
		if !relay.KnownTask(p.Task) {
			kind = "unknown task: accepted, keyed by the body's hash"
		}
		fmt.Fprintf(e.stdout, "task:      %s (%s)\nstatus:    %s\ndedup key: %s\n", p.Task, kind, p.Status, p.DedupKey)
		if len(m.Routes) == 0 {
			fmt.Fprintf(e.stdout, "routes:    none (accepted, stored and counted as unrouted)\ntargets:   none\n")
			return nil
		}
		fmt.Fprintf(e.stdout, "routes:    %s\ntargets:   %s\n", strings.Join(m.Routes, ", "), strings.Join(m.Targets, ", "))
		if *requests {
			return printRequests(c.Context(), e.stdout, cfg, p, body, m.Targets)
		}
		return nil
	}
	return cmd
}

// printRequests prints the request that the first attempt to each of
// targets would make for the payload p (body as it came).
func printRequests(ctx context.Context, w io.Writer, cfg *config.Config, p *relay.Payload, body []byte, targets []string) error {
	ev := &relay.Event{ID: "<event id>", Task: p.Task, Status: p.Status, Payload: body}
	for _, name := range targets {
		i := slices.IndexFunc(cfg.Targets, func(t config.Target) bool { return t.Name == name })
		pr, err := relay.PreviewRequest(ctx, targetSettings(cfg.Targets[i]), ev, "hooxrelay/"+versionString())
		fmt.Fprintf(w, "\n--- %s\n", name)
		if err != nil {
			fmt.Fprintf(w, "not sent: the delivery would go dead at once: %v\n", err)
			continue
		}
		fmt.Fprintf(w, "%s %s\n", pr.Method, pr.URL)
		for _, k := range slices.Sorted(maps.Keys(pr.Header)) {
			for _, v := range pr.Header[k] {
				fmt.Fprintf(w, "%s: %s\n", k, v)
			}
		}
		fmt.Fprintf(w, "\n%s\n", bytes.TrimSuffix(pr.Body, []byte("\n")))
	}
	return nil
}

// refusal says how the ingress would answer a payload that ParsePayload
// refused: the error code once, then the field and what is wrong with it.
func refusal(err error) string {
	var pe *relay.PayloadError
	switch {
	case errors.As(err, &pe) && pe.Field != "":
		return fmt.Sprintf("refused: 400 invalid_payload, field %q: %s", pe.Field, pe.Message)
	case errors.As(err, &pe):
		return "refused: 400 invalid_payload: " + pe.Message
	}
	return fmt.Sprintf("refused: 400 invalid_payload: %v", err)
}
