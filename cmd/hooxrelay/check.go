package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"maps"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/hooxrelay/hooxrelay/rules"
	"github.com/spf13/cobra"
)

func newCheckCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "check",
		GroupID: groupRelay,
		Short:   "validate a config and print its sources, targets and routing table",
		Long: `Validates a config file and prints its sources, targets and routing table.
Every problem found, unknown keys and wrong values alike, is printed as
FILE:LINE: KEY: PROBLEM, and the exit status is then 2.`,
		Args: noArgs,
	}
	cfgPath := configFlag(cmd.Flags())
	cmd.MarkFlagFilename("config", "yaml", "yml")
	cmd.RunE = func(*cobra.Command, []string) error {
		path := cfgPath()
		cfg, err := config.Load(path, configChecks...)
		if err != nil {
			if errors.Is(err, iofs.ErrNotExist) {
				return usagef("config file %q not found; pass --config FILE or set HOOXRELAY_CONFIG", path)
			}
			errs := splitJoined(err)
			for _, err := range errs {
				fmt.Fprintln(e.stderr, err)
			}
			fmt.Fprintf(e.stderr, "%s: %s; fix the file and run hooxrelay check again\n", path, plural(len(errs), "problem", "problems"))
			return errSilent{2}
		}
		fmt.Fprintf(e.stdout, "%s: valid\n\n", path)
		describe(e.stdout, cfg)
		return nil
	}
	return cmd
}

// checkConfig is config.Check with the routes and the request shaping
// compiled: what a route condition, a template or a jq program means is
// for the rules and shape packages alone to judge, and their problems are
// reported with all the others, at the lines of their keys.
func checkConfig(data []byte, name string) (*config.Config, error) {
	return config.Check(data, name, configChecks...)
}

// configChecks are the checks of the config that other packages judge.
var configChecks = []func(*config.Config) error{routeProblems, shapeProblems}

// shapeProblems compiles the request shaping of every target and names
// each problem by its key, such as targets[i].request.body.
func shapeProblems(cfg *config.Config) error {
	var errs []error
	for i, t := range cfg.Targets {
		_, err := shape.Compile(t.URL, shapeSettings(t.Request))
		for _, e := range splitJoined(err) {
			var se *shape.Error
			if errors.As(e, &se) {
				e = &config.FieldError{Path: fmt.Sprintf("targets[%d].%s", i, se.Key), Msg: se.Msg}
			}
			if e != nil {
				errs = append(errs, e)
			}
		}
	}
	return errors.Join(errs...)
}

// routeProblems compiles the routes of cfg and names each problem by its
// key, routes[i].match.where[j].KEY, for config.Check to place.
func routeProblems(cfg *config.Config) error {
	_, err := compileRoutes(cfg)
	if err == nil {
		return nil
	}
	var errs []error
	for _, e := range splitJoined(err) {
		var ce *rules.CompileError
		if errors.As(e, &ce) {
			e = &config.FieldError{Path: fmt.Sprintf("routes[%d].match.where[%d].%s", ce.Route, ce.Cond, ce.Field), Msg: ce.Msg}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// splitJoined undoes errors.Join, one level.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// describe prints the sources, targets and routing table of cfg.
func describe(w io.Writer, cfg *config.Config) {
	fmt.Fprintf(w, "Store: %s", cfg.Store.Kind)
	if cfg.Store.Kind == "embedded" {
		fmt.Fprintf(w, " at %s", cfg.Store.Path)
	}
	fmt.Fprintf(w, ", retention %s, dedup ttl %s\n", dur(cfg.Store.Retention), dur(cfg.Dedup.TTL))
	fmt.Fprintf(w, "Ingress: %s (admin %s), max body %d bytes\n\n", cfg.Server.Listen, cfg.Server.AdminListen, cfg.Server.MaxBodyBytes)

	fmt.Fprintln(w, "Sources")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tPATH\tVERIFY\tRATE LIMIT PER IP")
	for _, s := range cfg.Sources {
		fmt.Fprintf(tw, "  %s\tPOST %s\t%s\t%s\n", s.Name, s.Path, s.Verify.Kind, rateString(s.RateLimit))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nTargets")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tURL\tTIMEOUT\tIN FLIGHT\tRATE LIMIT\tRETRY\tBREAKER")
	for _, t := range cfg.Targets {
		r, b := t.Retry, t.Breaker
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%d attempts, %s×%g up to %s, jitter %g, max age %s\t%g of ≥%d in %s, open %s\n",
			t.Name, t.URL, dur(t.Timeout), t.MaxInFlight, rateString(t.RateLimit),
			r.MaxAttempts, dur(r.InitialInterval), r.Multiplier, dur(r.MaxInterval), r.Jitter, dur(r.MaxAge),
			b.FailureRatio, b.MinRequests, dur(b.Interval), dur(b.OpenTimeout))
	}
	tw.Flush()
	describeShaping(w, cfg)

	fmt.Fprintln(w, "\nRoutes (an event goes to the union of the targets of every matching route)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROUTE\tTASK\tSTATUS\tWHERE\tTARGETS")
	for _, r := range cfg.Routes {
		var where []string
		for _, c := range r.Match.Where {
			if c.Value == nil {
				where = append(where, fmt.Sprintf("%s %s", c.Path, c.Op))
			} else {
				where = append(where, fmt.Sprintf("%s %s %v", c.Path, c.Op, c.Value))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", r.Name, anyOf(r.Match.Task), anyOf(r.Match.Status),
			orDash(strings.Join(where, " and ")), strings.Join(r.Targets, ", "))
	}
	tw.Flush()
	if unused := unusedTargets(cfg); len(unused) > 0 {
		fmt.Fprintf(w, "\nNote: no route sends anything to %s.\n", strings.Join(unused, ", "))
	}
}

// describeShaping prints how the targets with a request block or success
// statuses shape their requests; nothing when none does.
func describeShaping(w io.Writer, cfg *config.Config) {
	var tw *tabwriter.Writer
	for _, t := range cfg.Targets {
		r := t.Request
		if reflect.ValueOf(r).IsZero() && len(t.Success) == 0 {
			continue
		}
		if tw == nil {
			fmt.Fprintln(w, "\nShaped requests (hooxrelay route --requests PAYLOAD shows them in full)")
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  TARGET\tMETHOD\tBODY\tHEADERS\tAUTH\tSUCCESS")
		}
		body := "as received"
		if r.Body != "" {
			body = "jq, sent as " + cmp.Or(r.Format, "json")
		}
		success := "any 2xx"
		if len(t.Success) > 0 {
			success = strings.ReplaceAll(strings.Trim(fmt.Sprint(t.Success), "[]"), " ", ", ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", t.Name, cmp.Or(r.Method, "POST"), body,
			orDash(strings.Join(slices.Sorted(maps.Keys(r.Headers)), ", ")), cmp.Or(r.Auth.Kind, "none"), success)
	}
	if tw != nil {
		tw.Flush()
	}
}

func unusedTargets(cfg *config.Config) []string {
	used := map[string]bool{}
	for _, r := range cfg.Routes {
		for _, t := range r.Targets {
			used[t] = true
		}
	}
	var out []string
	for _, t := range cfg.Targets {
		if !used[t.Name] {
			out = append(out, t.Name)
		}
	}
	return out
}

func rateString(r config.RateLimit) string {
	if r.RPS <= 0 {
		return "off"
	}
	return fmt.Sprintf("%g/s, burst %d", r.RPS, r.Burst)
}

func anyOf(vs []string) string {
	if len(vs) == 0 {
		return "any"
	}
	return strings.Join(vs, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// dur prints a duration the short way people write it: 168h, not 168h0m0s.
func dur(d config.Duration) string {
	s := d.D().String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
