package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

func newRouteCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "route [PAYLOAD_FILE | -]",
		GroupID: groupRelay,
		Short:   "dry run: print the dedup key, routes and targets of a payload",
		Long: `Dry run: validates one payload as the ingress would, and prints its dedup
key, the routes it matches and the targets it would be delivered to. Reads the
payload from PAYLOAD_FILE, or from standard input with "-" or no argument.
Exit status 1 when the payload would be refused (400).`,
		Example: `  hooxrelay route --config hooxrelay.yaml payload.json
  echo '{"task":"video_generate","job_id":"run_1","status":"completed"}' | hooxrelay route --config hooxrelay.yaml`,
		Args: maxOneArg("PAYLOAD_FILE"),
	}
	cfgPath := configFlag(cmd.Flags())
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.RunE = func(_ *cobra.Command, args []string) error {
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
		return nil
	}
	return cmd
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
