// Command hooxrelay receives Hoox webhooks, stores them durably and fans
// them out to internal targets. Run "hooxrelay help" for its commands.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version and commit are set by the Makefile through -ldflags (-X
// main.version=... -X main.commit=...); otherwise they come from the
// module's build information (see buildVersion).
var (
	version = ""
	commit  = ""
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// usageError is a command line or config problem: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errSilent is returned when the command already printed what went wrong.
type errSilent struct{ code int }

func (e errSilent) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var s errSilent
	if errors.As(err, &s) {
		return s.code
	}
	fmt.Fprintln(stderr, "hooxrelay:", err)
	var u usageError
	if errors.As(err, &u) {
		return 2
	}
	return 1
}

type command struct {
	name, args, summary string
	run                 func(ctx context.Context, args []string, env *env) error
}

// env is what every command gets from run.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

var commands []command

func init() {
	commands = []command{
		{"serve", "[--config FILE]", "run the relay", runServe},
		{"check", "[--config FILE]", "validate a config and print its sources, targets and routing table", runCheck},
		{"route", "[--config FILE] [PAYLOAD_FILE | -]", "dry run: print the dedup key, routes and targets of a payload", runRoute},
		{"demo", "", "run a relay with local targets and sample webhooks, and show what each target received", runDemo},
		{"sink", "--listen ADDR", "run a local test target that logs every request (can fail, slow down or flap)", runSink},
		{"send", "--url URL [--secret S] [PAYLOAD_FILE | -]", "send one webhook and print the answer", runSend},
		{"status", "", "show which relay answers at --admin: version, config hash, store, last reload", runStatus},
		{"targets", "", "list the targets with their breaker, pause and pending/dead/delivered counts", runTargets},
		{"events", "[--task T] [--status S] [--limit N] [--before ID]", "list received events, newest first, with their deliveries", runEvents},
		{"event", "EVENT_ID", "show one event: metadata, payload and every delivery attempt", runEvent},
		{"deliveries", "[--state pending|delivered|dead] [--target NAME] [--limit N] [--before ID]", "list deliveries, e.g. the dead letters", runDeliveries},
		{"retry", "DELIVERY_ID", "put one dead or pending delivery back in line now", runRetry},
		{"retry-dead", "--target NAME", "put every dead delivery of a target back in line, with progress", runRetryDead},
		{"pause", "TARGET", "stop attempts to a target; deliveries wait, nothing is dropped", runPause},
		{"resume", "TARGET", "restart attempts to a paused target", runResume},
		{"bench", "[SCENARIO] [flags]", "measure the relay: load against a bare baseline, or a fault scenario (burst, dead-target, crash, redis-outage, soak) with lost and duplicated deliveries", runBench},
		{"version", "[--json]", "print the version, the commit it was built from and when that commit was made", runVersion},
		{"health", "[--url URL] [--timeout D]", "exit 0 if a relay's /healthz (or --url) answers 2xx, 1 otherwise: a health check for images without a shell", runHealth},
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		usage(stderr)
		return usagef("no command given; see the list above")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return nil
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, args[1:], e)
		}
	}
	usage(stderr)
	return usagef("unknown command %q; see the list above", name)
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "hooxrelay receives Hoox webhooks, stores them durably and fans them out to internal targets.\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  hooxrelay %-8s %s\n", c.name, c.args)
		fmt.Fprintf(w, "      %s\n", c.summary)
	}
	fmt.Fprintf(w, "\nRun \"hooxrelay COMMAND --help\" for a command's flags.\nExit status: 0 success, 1 runtime failure, 2 usage or config error.\n")
}

// newFlags returns a flag set whose --help prints the command's synopsis,
// description and every flag.
func newFlags(e *env, name, args, description string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: hooxrelay %s %s\n\n%s\n", name, args, description)
		var n int
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprintf(w, "\nFlags:\n")
			fs.PrintDefaults()
		}
	}
	return fs
}

// parseFlags parses args; --help prints usage to stdout and ends the command
// with status 0, a bad flag ends it with status 2.
func parseFlags(fs *flag.FlagSet, args []string, e *env) error {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout)
			fs.Usage()
			return flag.ErrHelp
		}
	}
	if err := fs.Parse(args); err != nil {
		return errSilent{2}
	}
	return nil
}

func configFlag(fs *flag.FlagSet) *string {
	def := os.Getenv("HOOXRELAY_CONFIG")
	if def == "" {
		def = "hooxrelay.yaml"
	}
	return fs.String("config", def, "config file; the default is $HOOXRELAY_CONFIG when set")
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func runVersion(ctx context.Context, args []string, e *env) error {
	fs := newFlags(e, "version", "[--json]", `Prints the version of this binary, the VCS commit it was built from (with
"dirty" when the tree had uncommitted changes) and the time of that commit,
when known, on one line:

  hooxrelay v0.3.0 (commit 1a2b3c4d, 2026-11-27T10:00:00Z)

They come from the -X main.version and -X main.commit linker flags that
"make build" and "make release" set, else from what the Go toolchain
recorded (the module version, vcs.revision, vcs.modified, vcs.time).`)
	asJSON := fs.Bool("json", false, "print a JSON object: version, commit, dirty, commit_time, go, platform")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("version takes no arguments, got %q", fs.Args())
	}
	bv := buildVersion()
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(bv)
	}
	fmt.Fprintln(e.stdout, bv.String())
	return nil
}
