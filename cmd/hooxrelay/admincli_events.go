package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/adminclient"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/spf13/cobra"
)

// The admin commands that look at events and deliveries.

func newEventsCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("events", "list received events, newest first, with their deliveries",
		`Lists the events a relay received, newest first, with where each of their
deliveries stands (target:state/attempts). --status is the payload's
status, e.g. completed or error. Every filter is answered from an index of
the store, and filters combine: --job-id run_0123 --since 2h lists what the
relay received for that job in the last two hours. --look-id may be given
alone or with --avatar-id (then both must match). --since and --until take
an RFC 3339 time (2024-01-15T10:30:00Z) or a duration back from now (2h,
30m). For the next page, pass the last event id shown as --before. Calls
GET /api/v1/events.

Examples:
  hooxrelay events --job-id run_0123
  hooxrelay events --avatar-id avtr_abc --look-id look_edit_789 --status error
  hooxrelay events --dedup-key video_generate:run_0123:completed
  hooxrelay events --task video_generate --since 2h --until 1h`, noArgs)
	f := cmd.Flags()
	var filter adminclient.EventFilter
	f.StringVar(&filter.Task, "task", "", "only events of this `TASK`, e.g. video_generate")
	f.StringVar(&filter.Status, "status", "", "only events whose payload has this `STATUS`, e.g. error")
	f.StringVar(&filter.JobID, "job-id", "", "only events whose payload has this `JOB_ID` (video tasks)")
	f.StringVar(&filter.AvatarID, "avatar-id", "", "only events whose payload has this `AVATAR_ID` (avatar tasks)")
	f.StringVar(&filter.LookID, "look-id", "", "only events whose payload has this `LOOK_ID` (avatar tasks)")
	f.StringVar(&filter.DedupKey, "dedup-key", "", "only events with this dedup `KEY`, e.g. video_generate:run_0123:completed")
	f.StringVar(&filter.Since, "since", "", "only events received at or after `TIME`: RFC 3339, or a duration back from now such as 2h")
	f.StringVar(&filter.Until, "until", "", "only events received before `TIME`: RFC 3339, or a duration back from now such as 30m")
	limitFlag(f, &filter.Limit, "events")
	f.StringVar(&filter.Before, "before", "", "only events received before this `EVENT_ID` (the next page)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return listEvents(cmd.Context(), e, o, filter) }
	return cmd
}

func listEvents(ctx context.Context, e *env, o *adminOpts, f adminclient.EventFilter) error {
	if err := checkLimit(f.Limit); err != nil {
		return err
	}
	c, err := o.client(e)
	if err != nil {
		return err
	}
	evs, err := c.Events(ctx, f)
	if err != nil || o.json {
		return err
	}
	if len(evs) == 0 {
		fmt.Fprintln(e.stdout, "no events")
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "EVENT_ID\tRECEIVED\tTASK\tSTATUS\tDELIVERIES")
	for _, ev := range evs {
		ds := make([]string, len(ev.Deliveries))
		for i, d := range ev.Deliveries {
			ds[i] = fmt.Sprintf("%s:%s/%d", d.Target, d.State, d.Attempts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ev.EventID, timeString(ev.ReceivedAt), orDefault(ev.Task, "-"),
			orDefault(ev.Status, "-"), orDefault(strings.Join(ds, " "), "-"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	morePages(e, len(evs), f.Limit, evs[len(evs)-1].EventID)
	return nil
}

// morePages tells, on stderr so that the table stays clean, how to get
// the next page when this one is full.
func morePages(e *env, n, limit int, last string) {
	if n == limit {
		fmt.Fprintf(e.stderr, "(%d shown; for more, add --before %s)\n", n, last)
	}
}

func newEventCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("event EVENT_ID", "show one event: metadata, payload and every delivery attempt",
		`Shows one event: its metadata, its payload pretty-printed, and for each
delivery its state and every attempt (when, how long, the target's answer).
Calls GET /api/v1/events/EVENT_ID.`, oneArg("an EVENT_ID", `"hooxrelay events" lists them`))
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return showEvent(cmd.Context(), e, o, args[0]) }
	return cmd
}

func showEvent(ctx context.Context, e *env, o *adminOpts, id string) error {
	c, err := o.client(e)
	if err != nil {
		return err
	}
	ev, err := c.Event(ctx, id)
	if err != nil || o.json {
		return err
	}
	w := e.stdout
	tw := newTable(w)
	fmt.Fprintf(tw, "event\t%s\n", ev.EventID)
	fmt.Fprintf(tw, "source\t%s\n", ev.Source)
	fmt.Fprintf(tw, "task\t%s\n", ev.Task)
	fmt.Fprintf(tw, "status\t%s\n", ev.Status)
	fmt.Fprintf(tw, "dedup key\t%s\n", ev.DedupKey)
	fmt.Fprintf(tw, "received\t%s\n", timeString(ev.ReceivedAt))
	if ev.RemoteAddr != "" {
		fmt.Fprintf(tw, "from\t%s\n", ev.RemoteAddr)
	}
	names := make([]string, 0, len(ev.Headers))
	for k := range ev.Headers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(tw, "header\t%s: %s\n", k, ev.Headers[k])
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintf(w, "\npayload:\n")
	var s string
	var pretty bytes.Buffer
	switch {
	case json.Unmarshal(ev.Payload, &s) == nil: // a body that is not JSON, kept as text
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(s, "\n", "\n  "))
	case json.Indent(&pretty, ev.Payload, "  ", "  ") == nil:
		fmt.Fprintf(w, "  %s\n", pretty.Bytes())
	default:
		fmt.Fprintf(w, "  %s\n", ev.Payload)
	}

	if len(ev.Deliveries) == 0 {
		fmt.Fprintf(w, "\nno deliveries: no route matched this event\n")
	}
	for _, d := range ev.Deliveries {
		fmt.Fprintf(w, "\ndelivery %s: %s\n", d.DeliveryID, deliverySummary(d.DeliveryJSON))
		if len(d.History) == 0 {
			fmt.Fprintln(w, "  no attempts yet")
			continue
		}
		tw := newTable(w)
		fmt.Fprintln(tw, "  ATTEMPT\tSTARTED\tDURATION\tANSWER\tDETAIL")
		for _, a := range d.History {
			detail := a.Error
			if detail == "" {
				detail = a.Body
			}
			dur := time.Duration(a.DurationMS * float64(time.Millisecond)).Round(time.Microsecond)
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", a.Attempt, timeString(a.StartedAt), dur, statusString(a.Status), oneLine(detail, 60))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// deliverySummary says in a few words where a delivery stands.
func deliverySummary(d relay.DeliveryJSON) string {
	s := fmt.Sprintf("%s after %s", d.State, plural(d.Attempts, "attempt", "attempts"))
	switch d.State {
	case relay.Pending:
		s = fmt.Sprintf("pending, %s so far, next at %s", plural(d.Attempts, "attempt", "attempts"), timeString(d.NextAttemptAt))
	case relay.Dead:
		if d.LastError != "" {
			s += " (" + oneLine(d.LastError, 80) + ")"
		}
	}
	return s
}

var deliveryStates = []relay.State{relay.Pending, relay.Delivered, relay.Dead}

func newDeliveriesCmd(e *env) *cobra.Command {
	cmd, o := adminCmd("deliveries", "list deliveries, e.g. the dead letters",
		`Lists deliveries, newest event first: the delivery id (EVENT_ID:TARGET), its
state, how many attempts were made, the last answer and error, and for a
pending one when the next attempt is due. "--state dead" lists the dead
letters that "hooxrelay retry" and "hooxrelay retry-dead" put back in line.
For the next page, pass the last delivery id shown as --before.
Calls GET /api/v1/deliveries.`, noArgs)
	f := cmd.Flags()
	var filter adminclient.DeliveryFilter
	state := f.String("state", "", "only deliveries in this `STATE`: pending, delivered or dead")
	f.StringVar(&filter.Target, "target", "", "only deliveries to the target `NAME`")
	limitFlag(f, &filter.Limit, "deliveries")
	f.StringVar(&filter.Before, "before", "", "only deliveries after this `DELIVERY_ID` in the list (the next page)")
	cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions([]string{"pending", "delivered", "dead"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		filter.State = relay.State(*state)
		return listDeliveries(cmd.Context(), e, o, filter)
	}
	return cmd
}

func listDeliveries(ctx context.Context, e *env, o *adminOpts, f adminclient.DeliveryFilter) error {
	if f.State != "" && !slices.Contains(deliveryStates, f.State) {
		return usagef("--state must be pending, delivered or dead, got %q", f.State)
	}
	if err := checkLimit(f.Limit); err != nil {
		return err
	}
	c, err := o.client(e)
	if err != nil {
		return err
	}
	ds, err := c.Deliveries(ctx, f)
	if err != nil || o.json {
		return err
	}
	if len(ds) == 0 {
		what := "deliveries"
		if f.State != "" {
			what = string(f.State) + " deliveries"
		}
		if f.Target != "" {
			what += " to " + f.Target
		}
		fmt.Fprintln(e.stdout, "no "+what)
		return nil
	}
	tw := newTable(e.stdout)
	fmt.Fprintln(tw, "DELIVERY_ID\tSTATE\tATTEMPTS\tLAST_STATUS\tNEXT_ATTEMPT\tWAITING\tLAST_ERROR")
	for _, d := range ds {
		next, waiting := "-", "-"
		if d.State == relay.Pending {
			next = timeString(d.NextAttemptAt)
		}
		if d.Waiting != "" {
			waiting = d.Waiting
		}
		if d.WaitingUntil != nil {
			waiting += " until " + timeString(*d.WaitingUntil)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", d.DeliveryID, d.State, d.Attempts, statusString(d.LastStatus), next, waiting, oneLine(d.LastError, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	morePages(e, len(ds), f.Limit, ds[len(ds)-1].DeliveryID)
	return nil
}
