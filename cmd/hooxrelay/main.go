// Command hooxrelay receives Hoox webhooks, stores them durably and fans
// them out to internal targets. Run "hooxrelay --help" for its commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// exitCode prints err, if any, as one line on stderr and returns the exit
// status: 0 success, 1 runtime failure, 2 usage or config error.
func exitCode(err error, stderr io.Writer) int {
	if err == nil {
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

// env is what every command gets from run.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// The groups of commands in "hooxrelay --help".
const (
	groupRelay = "relay"
	groupTry   = "try"
	groupAdmin = "admin"
	groupOther = "other"
)

// run parses args and runs the command they name. It owns every goroutine
// the command starts, and returns when they have ended.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCmd(e)
	// Never nil: cobra would read os.Args instead.
	root.SetArgs(append([]string{}, args...))
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "hooxrelay",
		Short: "receive Hoox webhooks, store them durably and fan them out to internal targets",
		Long: `hooxrelay receives Hoox webhooks, stores them durably and fans them out to
internal targets, each with its own rate limit, concurrency cap, circuit
breaker and retries.

Flags go anywhere after the command, with two dashes (--config FILE or
--config=FILE). Exit status: 0 success, 1 runtime failure, 2 usage or
config error; errors are one line on stderr.`,
		Version:       buildVersion().String(),
		Args:          unknownSubcommand("command"),
		SilenceErrors: true, // exitCode prints them, on one line
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			cmd.Usage()
			return usagef(`no command given; pick one of the list above ("hooxrelay COMMAND --help" tells more)`)
		},
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		// A command's flags may come before it is named or mistyped
		// ("hooxrelay chek --config x.yaml"): the command is what is wrong.
		FParseErrWhitelist: cobra.FParseErrWhitelist{UnknownFlags: true},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(flagError)
	root.AddGroup(
		&cobra.Group{ID: groupRelay, Title: "Run and check a relay:"},
		&cobra.Group{ID: groupTry, Title: "Try it out locally:"},
		&cobra.Group{ID: groupAdmin, Title: "Look at and act on a running relay (its admin API):"},
		&cobra.Group{ID: groupOther, Title: "Other commands:"},
	)
	root.AddCommand(
		newServeCmd(e), newCheckCmd(e), newRouteCmd(e),
		newDemoCmd(e), newSinkCmd(e), newSendCmd(e), newBenchCmd(e),
		newStatusCmd(e), newTargetsCmd(e), newEventsCmd(e), newEventCmd(e), newExplainCmd(e), newDeliveriesCmd(e), newRejectedCmd(e),
		newRetryCmd(e), newRetryDeadCmd(e), newPauseCmd(e, true), newPauseCmd(e, false), newReplayCmd(e), newReplaysCmd(e),
		newStoreCmd(e), newHealthCmd(e), newVersionCmd(e), newCompletionCmd(e),
	)
	root.SetHelpCommand(newHelpCmd(root))
	return root
}

// newHelpCmd is "help [COMMAND]": cobra's own says "Unknown help topic"
// and exits 0.
func newHelpCmd(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:     "help [COMMAND]",
		GroupID: groupOther,
		Short:   "show the help of a command, as COMMAND --help does",
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			var names []cobra.Completion
			for _, c := range root.Commands() {
				if c.IsAvailableCommand() {
					names = append(names, c.Name())
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(_ *cobra.Command, args []string) error {
			cmd, rest, err := root.Find(args)
			if err == nil && len(rest) > 0 {
				err = cmd.ValidateArgs(rest)
			}
			if err != nil {
				return err
			}
			return cmd.Help()
		},
	}
}

// usageTemplate is the end of every --help and what a command without
// arguments prints. Every subcommand is in a group.
const usageTemplate = `Usage:{{if not .HasParent}}
  {{.CommandPath}} COMMAND [flags]{{else if .Runnable}}
  {{.UseLine}}{{else if .HasAvailableSubCommands}}
  {{.CommandPath}} COMMAND [flags]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}{{$cmds := .Commands}}{{range $group := .Groups}}

{{.Title}}{{range $cmds}}{{if (and (eq .GroupID $group.ID) (or .IsAvailableCommand (eq .Name "help")))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if not .HasParent}}

Run "{{.CommandPath}} COMMAND --help" for the flags of each.{{end}}
`

// unknownSubcommand refuses the arguments of a command whose only
// arguments are its subcommands, suggesting the closest one.
func unknownSubcommand(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			return usagef("unknown %s %q; did you mean %q?", what, args[0], strings.Join(s, `" or "`))
		}
		return usagef(`unknown %s %q; "%s --help" lists them all`, what, args[0], cmd.CommandPath())
	}
}

// singleDash matches pflag's error for a long flag written with one dash,
// such as -config.
var singleDash = regexp.MustCompile(`^unknown shorthand flag: '.' in -([a-z][a-z-]+)`)

// flagError makes a bad flag a usage error that says where to look.
func flagError(cmd *cobra.Command, err error) error {
	if m := singleDash.FindStringSubmatch(err.Error()); m != nil && cmd.Flags().Lookup(m[1]) != nil {
		return usagef("-%s: long flags take two dashes: --%s", m[1], m[1])
	}
	return usagef(`%v; "%s --help" lists its flags`, err, cmd.CommandPath())
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// maxOneArg allows at most one positional argument, named what.
func maxOneArg(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 1 {
			return usagef("%s takes at most one %s, got %q", cmd.CommandPath(), what, args)
		}
		return nil
	}
}

// oneArg requires exactly one positional argument, named what; hint says
// where to find one.
func oneArg(what, hint string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			return usagef("%s needs %s; %s", cmd.CommandPath(), what, hint)
		case len(args) > 1:
			return usagef("%s takes one %s, got %q", cmd.CommandPath(), what, args)
		}
		return nil
	}
}

// configFlag adds --config and returns the path it names: the flag, else
// $HOOXRELAY_CONFIG, else hooxrelay.yaml.
func configFlag(f *pflag.FlagSet) func() string {
	p := f.String("config", "", "read the config from `FILE` (default $HOOXRELAY_CONFIG, else hooxrelay.yaml)")
	return func() string {
		if *p != "" {
			return *p
		}
		if env := os.Getenv("HOOXRELAY_CONFIG"); env != "" {
			return env
		}
		return "hooxrelay.yaml"
	}
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
