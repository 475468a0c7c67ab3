package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/hooxrelay/hooxrelay/internal/demo"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newDemoCmd(e *env) *cobra.Command {
	var keep bool
	cmd := &cobra.Command{
		Use:     "demo",
		GroupID: groupTry,
		Short:   "run a relay with local targets and sample webhooks, and show what each target received",
		Long: `Runs a relay on an embedded store in a temporary directory, with three local
sink targets (media, avatars, audit; audit fails its first 3 requests), sends
sample Hoox webhooks of every task type (with a duplicate and a malformed
one), waits for the deliveries, prints what each target received, and exits.
Everything listens on 127.0.0.1 only.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env := &demo.Env{Stdout: e.stdout, Redraw: interactive(e.stdout), Start: demoStart}
			return demo.Run(cmd.Context(), env, keep)
		},
	}
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the temporary directory (store and relay log) for inspection")
	return cmd
}

// demoStart is demo.Env.Start: startLocal, for the config the demo wrote.
func demoStart(ctx context.Context, wg *sync.WaitGroup, config []byte, log *slog.Logger) (string, <-chan error, error) {
	return startLocal(ctx, wg, config, "demo.yaml", log)
}

// interactive reports whether w is a terminal, where progress may redraw
// itself in place.
func interactive(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
