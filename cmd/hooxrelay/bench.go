package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hooxrelay/hooxrelay/internal/bench"
	"github.com/spf13/cobra"
)

// newBenchCmd is "bench": a subcommand per scenario of internal/bench,
// and without one, the first scenario (load), whose flags it takes.
func newBenchCmd(e *env) *cobra.Command {
	def := bench.Scenarios[0]
	cmd := &cobra.Command{
		Use:     "bench [SCENARIO]",
		GroupID: groupTry,
		Short:   "measure the relay: load against a bare baseline, or a fault scenario with lost and duplicated deliveries",
		Long: `Measures the relay under load and under faults. Without a scenario it runs
` + def.Name + `, whose flags follow.

Every scenario sends only to loopback addresses it opened itself, prints
its progress on stderr and a short table on stdout (--json: one JSON
object), and reports how many acked events were lost (never delivered:
must be 0, or the command fails) and how many were delivered twice.

` + def.Long,
		Args: unknownSubcommand("scenario"),
	}
	benchRun(cmd, e, def)
	cmd.AddGroup(&cobra.Group{ID: "scenario", Title: "Scenarios (\"hooxrelay bench SCENARIO --help\" tells each one's flags):"})
	for _, s := range bench.Scenarios {
		sub := &cobra.Command{Use: s.Name, GroupID: "scenario", Short: s.Short, Long: s.Long, Args: noArgs, Hidden: s.Hidden}
		benchRun(sub, e, s)
		cmd.AddCommand(sub)
	}
	return cmd
}

// benchRun gives cmd the flags of s and makes it run s, with relays
// started in this process by serve.
func benchRun(cmd *cobra.Command, e *env, s *bench.Scenario) {
	run := s.Flags(cmd.Flags())
	env := &bench.Env{Stdout: e.stdout, Progress: e.stderr, Serve: benchServe}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		tuneGC() // as serve's: the relays and the baseline in this process share it
		err := run(cmd.Context(), env)
		if errors.Is(err, bench.ErrUsage) {
			return usageError{err}
		}
		return err
	}
}

// benchServe is bench.Env.Serve: serve, for a config the bench wrote.
func benchServe(ctx context.Context, yaml []byte, log *slog.Logger, ready func(ingress, admin string)) error {
	cfg, err := checkConfig(yaml, "bench.yaml")
	if err != nil {
		return fmt.Errorf("bench.yaml: %w", err)
	}
	return serve(ctx, cfg, "", log, ready, nil)
}
