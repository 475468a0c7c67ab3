package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay"
)

func runRoute(ctx context.Context, args []string, e *env) error {
	fs := newFlags(e, "route", "[--config FILE] [PAYLOAD_FILE | -]", `Dry run: validates one payload as the ingress would, and prints its dedup
key, the routes it matches and the targets it would be delivered to. Reads the
payload from PAYLOAD_FILE, or from standard input with "-" or no argument.
Exit status 1 when the payload would be refused (400).`)
	cfgPath := configFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usagef("route takes at most one PAYLOAD_FILE, got %q", fs.Args())
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	table, err := relay.CompileRoutes(cfg)
	if err != nil {
		return usageError{err}
	}
	arg := fs.Arg(0)
	if arg == "" {
		arg = "-"
	}
	body, err := readPayloadArg(arg, e.stdin)
	if err != nil {
		return err
	}
	p, err := relay.ParsePayload(body)
	if err != nil {
		var pe *relay.PayloadError
		if errors.As(err, &pe) && pe.Field != "" {
			fmt.Fprintf(e.stdout, "refused: 400 invalid_payload, field %q: %s\n", pe.Field, pe.Message)
		} else {
			fmt.Fprintf(e.stdout, "refused: 400 invalid_payload: %v\n", err)
		}
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
