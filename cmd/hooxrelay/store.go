package main

import (
	"fmt"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/migrate"
	"github.com/spf13/cobra"
)

func newStoreCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "store COMMAND",
		GroupID: groupRelay,
		Short:   "work on the embedded store's files: migrate an earlier version's file",
		Long: `Commands that work on the embedded store's files, with no relay running on
them.

  hooxrelay store migrate --from OLD_FILE --to NEW_DIR`,
		Args: unknownSubcommand("command"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(e.stderr)
			cmd.Usage()
			return usagef(`no store command given; try "hooxrelay store migrate --help"`)
		},
	}
	cmd.AddCommand(newMigrateCmd(e))
	return cmd
}

func newMigrateCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate --from OLD_FILE --to NEW_DIR",
		Short: "copy the store file of an earlier hooxrelay (bbolt) into a new store directory",
		Long: `Copies the embedded store of an earlier hooxrelay, one bbolt file (by
default ./data/hooxrelay.db), into a new store directory, the layout this
version serves from (by default ./data/store): every event with its payload,
every delivery in its state (pending ones stay in line, due when they were),
every attempt, the dedup marks and the pause marks.

Stop the relay first: the old file is opened read-only, and a relay still
running on it makes the migration fail after 2 seconds. --to must not exist;
the copy is written to NEW_DIR.partial and renamed to NEW_DIR once it is
complete and on disk, so NEW_DIR is never half a store. The old file is left
as it was: delete it once the relay runs well on the new directory.

Progress goes to stderr every 2 seconds while records are copied. Then set
store.path to NEW_DIR and start the relay. Exit status: 0 copied, 1 the copy failed (delete
NEW_DIR.partial before trying again), 2 a bad flag.`,
		Example: `  hooxrelay store migrate --from ./data/hooxrelay.db --to ./data/store`,
		Args:    noArgs,
	}
	from := cmd.Flags().String("from", "", "the bbolt store `FILE` of an earlier hooxrelay (its store.path)")
	to := cmd.Flags().String("to", "", "the new store `DIR`ectory to create; it must not exist")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if *from == "" || *to == "" {
			return usagef("both --from OLD_FILE and --to NEW_DIR are required")
		}
		start := time.Now()
		c, err := migrate.Run(*from, *to, e.stderr, 2*time.Second)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "migrated %s from %s to %s in %s; set store.path: %s\n", c, *from, *to, time.Since(start).Round(time.Millisecond), *to)
		return nil
	}
	return cmd
}
