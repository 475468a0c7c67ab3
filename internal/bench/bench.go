// Package bench measures a relay under load and under faults: the load
// run against a bare HTTP baseline, and the fault scenarios (a burst, a
// dead target, a crashed relay process, a Redis outage, a long soak) that
// count what was acked against what was delivered.
//
// "hooxrelay bench" runs them; the command gives each Scenario its flags
// and an Env, through which the bench starts relays in its own process
// without knowing how a relay is wired. Everything a scenario opens
// listens on loopback and sends only there.
//
// A scenario is one file here: a *Scenario value (name, help, flags and
// the function that runs it), listed in Scenarios. Its run starts from the
// shared setup in run.go: a directory, the relay's log, its targets, a
// relay in this process or as a child process, a driver sending webhooks,
// the wait for the deliveries and the report.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/spf13/pflag"
)

// Scenarios are the scenarios in the order "hooxrelay bench --help" lists
// them. The first, load, is what "hooxrelay bench" runs without one.
var Scenarios = []*Scenario{load, sustain, backlog, burst, deadTarget, crash, redisOutage, soak, bare}

// A Scenario is one benchmark. Its fields are read-only once listed in
// Scenarios.
type Scenario struct {
	Name  string // the subcommand, such as "burst"
	Short string // one line for the list of scenarios
	Long  string // what it does and what it prints, for its --help
	// Hidden scenarios serve other scenarios and are not listed.
	Hidden bool
	// Flags declares the scenario's flags on fs and returns the function
	// that runs it with their values.
	Flags func(fs *pflag.FlagSet) func(ctx context.Context, env *Env) error
}

// Env is what a scenario needs from the command that runs it.
type Env struct {
	Stdout   io.Writer // the report: a table, or one JSON object
	Progress io.Writer // progress lines, redrawn in place with \r

	// Serve runs a relay for the content of a config file until ctx ends,
	// logging to log, and calls ready with its ingress and admin addresses
	// once it listens. Its wiring belongs to the command; the bench only
	// writes the config. The scenarios that run the relay as a child
	// process do without it.
	Serve func(ctx context.Context, config []byte, log *slog.Logger, ready func(ingress, admin string)) error
}

// ErrUsage is in the chain of an error about the flags a scenario was
// given: the command line is wrong, not the relay.
var ErrUsage = errors.New("bad flags")

type usageError struct{ error }

func (usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// errLost is returned by a scenario in which acked events were lost, after
// its report: the relay broke its promise.
var errLost = errors.New("acked events were lost")

// The flags most scenarios share, with the same words in each --help.

func jsonFlag(f *pflag.FlagSet, p *bool) {
	f.BoolVar(p, "json", false, "print the result as one JSON object")
}

// dirFlag is --dir; what says what the directory holds.
func dirFlag(f *pflag.FlagSet, p *string, what string) {
	f.StringVar(p, "dir", "", "directory for "+what+" (default: a temporary directory)")
}

// redisFlag is the --redis flag of the scenarios that can run on Redis.
func redisFlag(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "redis", "", "run the relay on the Redis at this loopback `URL` (e.g. redis://127.0.0.1:6379/15) instead of the embedded store; keys go under a prefix of their own")
}

// waitFlag is --wait, the longest wait for the deliveries after, with a
// default of 5 minutes.
func waitFlag(f *pflag.FlagSet, p *time.Duration, after string) {
	f.DurationVar(p, "wait", 5*time.Minute, "longest wait for the deliveries after "+after)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// sleepCtx waits for d or for ctx.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
