package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

func newRejectedCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("rejected", "list the webhook requests the ingress refused lately, newest first",
		`Lists the last webhook requests the ingress refused (answered 4xx or 503),
newest first: when, the HTTP status and outcome (invalid_signature,
invalid_payload, forbidden, rate_limited, payload_too_large,
unsupported_encoding, not_found, method_not_allowed, overloaded,
unavailable), the source, the client address and the reason. With --full,
each request's headers (secrets shown as ***) and the first 2 KiB of its
body too. This is where a signature that started failing after a secret
rotation shows. The relay keeps the last server.rejected_log of them in
memory (default 1000; lost on restart). Calls GET /api/v1/rejected.`, noArgs)
	f := cmd.Flags()
	var limit int
	limitFlag(f, &limit, "refused requests")
	full := f.Bool("full", false, "show each request's headers and body too")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return listRejected(cmd.Context(), e, o, limit, *full) }
	return cmd
}

func listRejected(ctx context.Context, e *env, o *adminOpts, limit int, full bool) error {
	if err := checkLimit(limit); err != nil {
		return err
	}
	c, err := o.client(e)
	if err != nil {
		return err
	}
	rs, err := c.Rejected(ctx, limit)
	if err != nil || o.json {
		return err
	}
	if len(rs) == 0 {
		fmt.Fprintln(e.stdout, "no refused requests")
		return nil
	}
	if full {
		return printRejectedFull(e, rs)
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "TIME\tSTATUS\tOUTCOME\tSOURCE\tFROM\tREASON")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", timeString(r.At), r.Status, r.Outcome, orDefault(r.Source, "-"),
			orDefault(r.RemoteAddr, "-"), oneLine(r.Reason, 80))
	}
	return tw.Flush()
}

func printRejectedFull(e *env, rs []relay.RejectedJSON) error {
	for i, r := range rs {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		tw := newTable(e.stdout)
		fmt.Fprintf(tw, "time\t%s\n", timeString(r.At))
		fmt.Fprintf(tw, "request\t%s %s\n", r.Method, r.Path)
		fmt.Fprintf(tw, "answer\t%d %s\n", r.Status, r.Outcome)
		fmt.Fprintf(tw, "source\t%s\n", orDefault(r.Source, "-"))
		fmt.Fprintf(tw, "from\t%s\n", orDefault(r.RemoteAddr, "-"))
		fmt.Fprintf(tw, "reason\t%s\n", orDefault(r.Reason, "-"))
		for _, k := range slices.Sorted(maps.Keys(r.Headers)) {
			fmt.Fprintf(tw, "header\t%s: %s\n", k, r.Headers[k])
		}
		body := fmt.Sprintf("%d bytes", r.BodyBytes)
		if r.Truncated {
			body += ", the first 2048 shown"
		}
		fmt.Fprintf(tw, "body\t%s\n", body)
		if err := tw.Flush(); err != nil {
			return err
		}
		if r.Body != "" {
			fmt.Fprintf(e.stdout, "  %s\n", strings.ReplaceAll(r.Body, "\n", "\n  "))
		}
	}
	return nil
}
