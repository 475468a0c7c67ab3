package bench

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// userHZ is the unit of the CPU times in /proc: fixed at 100 per second by
// Linux's interface to user space, whatever the kernel's own tick.
const userHZ = 100

// cpuSample is the CPU time the parts of a run had used at one moment, and
// the machine's busy and total time, so that two samples tell who used
// the cores in between. The load generator and the targets are this
// process (and the relay too when it is not a process of its own).
type cpuSample struct {
	self  time.Duration
	relay time.Duration // 0 without a relay process
	redis time.Duration // Redis's main thread; 0 without Redis
	// The machine's jiffies over all its cores (/proc/stat).
	busy, total uint64
}

// cpuMeter samples a run's CPU: this process, the relay's process when
// relayPID is not 0, and the Redis of rdb when it is not nil.
type cpuMeter struct {
	relayPID int
	rdb      *redis.Client
}

func (m cpuMeter) sample(ctx context.Context) cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if m.relayPID != 0 {
		s.relay = procCPU(strconv.Itoa(m.relayPID))
	}
	if m.rdb != nil {
		if st, err := readRedisStats(ctx, m.rdb); err == nil {
			s.redis = time.Duration(st.CPU * float64(time.Second))
		}
	}
	s.busy, s.total = machineCPU()
	return s
}

// procCPU returns the user and system time of process pid; 0 where /proc
// is missing.
func procCPU(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	return parseProcStat(string(b))
}

// parseProcStat reads utime and stime from a /proc/PID/stat line. The
// command name, in parentheses, may hold spaces and parentheses itself:
// the fields are counted from after its last ")".
func parseProcStat(line string) time.Duration {
	i := strings.LastIndexByte(line, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(line[i+1:])
	// After the name: state is field 3 of the line, utime 14, stime 15.
	if len(f) < 13 {
		return 0
	}
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(u+s) * time.Second / userHZ
}

// machineCPU returns the jiffies the machine's cores spent busy and in
// all, from the first line of /proc/stat; zeros where it is missing.
func machineCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachineCPU(line)
}

// parseMachineCPU reads "cpu user nice system idle iowait irq softirq
// steal ...": idle and iowait are not busy, nor is steal (time the host
// gave another machine), which still counts in the total; guest time is
// already counted in user and nice.
func parseMachineCPU(line string) (busy, total uint64) {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:min(len(f), 9)] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += n
		if i != 3 && i != 4 && i != 7 { // idle, iowait, steal
			busy += n
		}
	}
	return busy, total
}

// CPUShare is what two samples tell: the CPU time per webhook of each part
// of a run, and how busy the machine's cores were. A part that was not
// sampled is 0.
type CPUShare struct {
	// BenchUS is the load generator and the targets, with the relay when
	// it runs in this process.
	BenchUS float64 `json:"bench_us_per_webhook"`
	RelayUS float64 `json:"relay_us_per_webhook,omitempty"`
	RedisUS float64 `json:"redis_us_per_webhook,omitempty"`
	// Busy is the share of all the machine's cores that was busy, 0 to 1,
	// whoever on the machine used them (time the host took back, steal,
	// is not busy).
	Busy float64 `json:"machine_busy"`
	// Partial says that deliveries the webhooks were owed were left out:
	// they were not all made when the figures were read.
	Partial bool `json:"deliveries_left_out,omitempty"`
}

// share returns the CPU of each part between a and b per webhook of n.
func share(a, b cpuSample, n int64) CPUShare {
	per := func(d time.Duration) float64 {
		if d <= 0 || n <= 0 {
			return 0
		}
		return float64(d.Microseconds()) / float64(n)
	}
	c := CPUShare{BenchUS: per(b.self - a.self), RelayUS: per(b.relay - a.relay), RedisUS: per(b.redis - a.redis)}
	if b.total > a.total {
		c.Busy = float64(b.busy-a.busy) / float64(b.total-a.total)
	}
	return c
}

// stepCPU is a sustain step's share: the CPU per webhook from a, as it
// started sending, to c, once its deliveries were made (all of them when
// drained, else those made by then: Partial), and the cores' busy share
// from a to b, while it sent and was answered.
func stepCPU(a, b, c cpuSample, n int64, drained bool) CPUShare {
	s := share(a, c, n)
	s.Busy = share(a, b, n).Busy
	s.Partial = !drained
	return s
}

// String is the share as a step's line shows it: "bench" is the senders
// and the targets, "relay+bench" the same process with the relay in it.
func (c CPUShare) String() string {
	var parts []string
	if c.RelayUS > 0 {
		parts = append(parts, fmt.Sprintf("relay %.0f", c.RelayUS))
	}
	if c.RedisUS > 0 {
		parts = append(parts, fmt.Sprintf("redis %.0f", c.RedisUS))
	}
	if c.RelayUS > 0 {
		parts = append(parts, fmt.Sprintf("bench %.0f", c.BenchUS))
	} else {
		parts = append(parts, fmt.Sprintf("relay+bench %.0f", c.BenchUS))
	}
	out := fmt.Sprintf("%s µs/webhook, cores %.0f%% busy", strings.Join(parts, ", "), 100*c.Busy)
	if c.Partial {
		out += " (deliveries still owed left out)"
	}
	return out
}
