package bench

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/testenv"
)

func TestParseProcStat(t *testing.T) {
	// A name with spaces and a ")" in it; utime 250, stime 50 ticks.
	line := "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1000 0 0"
	if got, want := parseProcStat(line), 3*time.Second; got != want {
		t.Errorf("parseProcStat = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "4242 no parens", "4242 (x) S 1 2"} {
		if got := parseProcStat(bad); got != 0 {
			t.Errorf("parseProcStat(%q) = %v, want 0", bad, got)
		}
	}
}

func TestParseMachineCPU(t *testing.T) {
	busy, total := parseMachineCPU("cpu  100 5 20 800 50 1 4 9 7 0")
	// steal (9) counts in the total only; guest (7) is inside user
	// already: only the first eight count.
	if busy != 130 || total != 989 {
		t.Errorf("busy %d, total %d; want 130 and 989", busy, total)
	}
	if b, tt := parseMachineCPU("intr 1 2 3"); b != 0 || tt != 0 {
		t.Errorf("not a cpu line: %d, %d", b, tt)
	}
}

// TestCPUMeter burns CPU in this process, sampled as both itself and a
// "relay" process (its own pid), and checks that both saw it.
func TestCPUMeter(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		if testenv.InCI() {
			t.Fatal("no /proc/self/stat: CI runs on Linux, where the bench reads CPU times from /proc")
		}
		t.Skip("no /proc: CPU times are read from it on Linux only")
	}
	m := cpuMeter{relayPID: os.Getpid()}
	ctx := context.Background()
	start := time.Now()
	a := m.sample(ctx)
	// Until this process has used 150ms of CPU, however busy the
	// machine is.
	x := 0
	for m.sample(ctx).self-a.self < 150*time.Millisecond {
		for i := range 100000 {
			x += i * i
		}
	}
	strconv.Itoa(x)
	b := m.sample(ctx)
	c := share(a, b, 100)
	// At least 150ms of CPU: over 1ms per webhook of 100, as this process
	// and as the relay's (read from /proc in 10ms ticks).
	// And not much more than the wall time: 100 webhooks in at most the
	// loop's wall time on both cores.
	most := 2 * float64(time.Since(start).Microseconds()) / 100
	if c.BenchUS < 1000 || c.RelayUS < 1000 || c.BenchUS > most || c.RelayUS > most {
		t.Errorf("share %+v: want between 1000 and %.0f µs per webhook for this process and the relay", c, most)
	}
	if c.RedisUS != 0 {
		t.Errorf("Redis share %v without Redis", c.RedisUS)
	}
	if c.Busy <= 0 || c.Busy > 1 {
		t.Errorf("machine busy %v, want in (0, 1]", c.Busy)
	}
	if s := c.String(); s == "" {
		t.Error("empty String")
	}
}
