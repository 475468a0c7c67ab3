package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisOutageResult is the outcome of "bench redis-outage".
type redisOutageResult struct {
	Scenario  string   `json:"scenario"`
	RatePerS  float64  `json:"rate_per_s"`
	DownS     float64  `json:"down_s"`
	LeaseS    float64  `json:"lease_s"`
	Acks      ackStats `json:"acks"`
	Answers   int64    `json:"answers_503_while_down"`
	ReadyDown int      `json:"readyz_status_while_down"`
	// FirstAckS is how long after redis-server was started again the
	// relay acked a webhook.
	FirstAckS *float64    `json:"first_ack_after_restart_s"`
	Delivery  drainResult `json:"delivery"`
}

func runBenchRedisOutage(ctx context.Context, name string, args []string, e *env) error {
	fs := newFlags(e, name, "[--down D] [--json]", `Starts a redis-server of its own (it must be installed) on a free loopback
port in a temporary directory, with appendonly yes and appendfsync always
(an ack means fsync'd), and a relay on it with one target. It sends
--rate webhooks per second; after --before it kills redis-server
(SIGKILL), starts it again on the same files after --down, and keeps
sending for --after. Webhooks go on arriving at --rate during the outage,
and each is resent until acked (same body, after the Retry-After of a
503, as Hoox does).
It prints the 503s the senders saw, how soon after the restart webhooks
were acked again, acked against delivered, how many acked events were lost
(must be 0) and how many were delivered twice (attempts whose result could
not be recorded during the outage go again once their --lease ends).`)
	down := fs.Duration("down", 10*time.Second, "how long Redis is down")
	before := fs.Duration("before", 3*time.Second, "how long to send before Redis goes down")
	after := fs.Duration("after", 5*time.Second, "how long to send after Redis is back")
	rps := fs.Float64("rate", 200, "webhooks per second")
	lease := fs.Duration("lease", 30*time.Second, "store.redis.lease of the relay (the config's default is 30s)")
	wait := fs.Duration("wait", 5*time.Minute, "longest wait for the deliveries after the load")
	dirFlag := fs.String("dir", "", "directory for Redis's files and the relay's log (default: a temporary directory)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *down <= 0 || *rps <= 0 || *lease <= 0 || *before < 0 || *after < 0 {
		return usagef("--down, --rate and --lease must be positive")
	}
	dir, logf, cleanup, err := scenarioDir(*dirFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	progress := e.stderr

	// go-redis reports each failed dial on the standard logger: during
	// the outage, many lines a second over the progress.
	redis.SetLogger(discardRedisLog{})
	rs, err := newRedisProc(dir)
	if err != nil {
		return err
	}
	if err := rs.start(ctx); err != nil {
		return err
	}
	defer rs.kill()
	tgt := newBenchTarget("t")
	if err := tgt.start(ctx, &wg); err != nil {
		return err
	}
	rel, err := startInProcess(ctx, &wg, scenarioConfig("127.0.0.1:0", "127.0.0.1:0",
		fmt.Sprintf("{kind: redis, redis: {url: %q, prefix: hooxrelay-bench, lease: %s}}", "redis://"+rs.addr+"/0", *lease),
		scenarioTarget{"t", tgt.url(), ""}), logf)
	if err != nil {
		return err
	}
	d, err := newPacedDriver(rel.ingress, *rps, 0)
	if err != nil {
		return err
	}
	res := redisOutageResult{Scenario: "redis-outage", RatePerS: *rps, DownS: down.Seconds(), LeaseS: lease.Seconds()}

	start := time.Now()
	var phaseMu sync.Mutex
	phase := "Redis up"
	stopProgress := every(ctx, time.Second, func() {
		phaseMu.Lock()
		ph := phase
		phaseMu.Unlock()
		fmt.Fprintf(progress, "\rredis-outage: %s, %s, %d acked, %d answers 503, %d delivered   ",
			time.Since(start).Round(time.Second), ph, d.acks.Load(), d.unavailable.Load(), tgt.sink.distinct.Load())
	})
	defer stopProgress()
	setPhase := func(p string) {
		phaseMu.Lock()
		phase = p
		phaseMu.Unlock()
	}
	sendCtx, stopSending := context.WithCancel(ctx)
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		d.run(ctx, sendCtx)
	}()
	stop := func() {
		stopSending()
		<-driven
	}
	sleepCtx(ctx, *before)
	unavailableBefore := d.unavailable.Load()
	rs.kill()
	setPhase("REDIS DOWN")
	sleepCtx(ctx, *down/2)
	if resp, err := probeClient.Get("http://" + rel.admin + "/readyz"); err == nil {
		resp.Body.Close()
		res.ReadyDown = resp.StatusCode
	}
	sleepCtx(ctx, *down-*down/2)
	acksAtRestart := d.acks.Load()
	if err := rs.start(ctx); err != nil {
		stop()
		return fmt.Errorf("restart redis-server: %w", err)
	}
	restarted := time.Now()
	res.Answers = d.unavailable.Load() - unavailableBefore
	setPhase("Redis back")
	for time.Since(restarted) < max(*after, 30*time.Second) && ctx.Err() == nil {
		if d.acks.Load() > acksAtRestart {
			s := time.Since(restarted).Seconds()
			res.FirstAckS = &s
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sleepCtx(ctx, *after-time.Since(restarted))
	stop()
	loadEnd := time.Now()
	res.Acks = d.stats()
	stopProgress()
	fmt.Fprintln(progress)
	res.Delivery = waitDelivered(ctx, []*benchTarget{tgt}, d.ackedIDs(), loadEnd, *wait, progress, "redis-outage")
	cancel()
	if err := <-rel.served; err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return report(e, *asJSON, res, res.Delivery)
}

func (r redisOutageResult) table(w io.Writer) {
	a := r.Acks
	fmt.Fprintf(w, "redis-outage: %g webhooks/s to a relay on its own redis-server (appendfsync always), killed for %gs; lease %gs\n\n", r.RatePerS, r.DownS, r.LeaseS)
	fmt.Fprintf(w, "acked       %d of %d sent (not acked: %d); at most %d being sent or resent at once\n", a.Acked, a.Sent, a.Unacked, a.MaxOpen)
	fmt.Fprintf(w, "503s        %d while Redis was down (%d in all; other answers %d, no answer %d); /readyz answered %d\n", r.Answers, a.Unavailable, a.OtherStatus, a.NoAnswer, r.ReadyDown)
	if r.FirstAckS != nil {
		fmt.Fprintf(w, "back        first ack %.2fs after redis-server was started again\n", *r.FirstAckS)
	} else {
		fmt.Fprintf(w, "back        NO ack after redis-server was started again\n")
	}
	fmt.Fprintf(w, "delivered   %d distinct events\n", r.Delivery.Targets[0].Delivered)
	fmt.Fprintf(w, "lost        %d\nduplicated  %d\ndrain       %.1fs after the load ended\n", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.DrainSec)
}

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// errNoRedis says redis-server is missing.
var errNoRedis = errors.New("redis-server is not installed (e.g. apt-get install redis-server); the redis-outage scenario runs one of its own")

// redisProc is a redis-server that the bench starts, kills and starts
// again on the same port and files.
type redisProc struct {
	bin, dir, addr string
	args           []string
	cmd            *exec.Cmd
	exited         chan struct{}
}

func newRedisProc(dir string) (*redisProc, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedis
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &redisProc{bin: bin, dir: filepath.Join(dir, "redis"), addr: ln.Addr().String()}
	ln.Close()
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(r.addr)
	r.args = []string{"--bind", "127.0.0.1", "--port", port, "--save", "", "--dir", r.dir,
		"--logfile", filepath.Join(r.dir, "redis.log"), "--appendonly", "yes", "--appendfsync", "always"}
	return r, nil
}

// start runs the server and waits until it answers PING.
func (r *redisProc) start(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, r.bin, r.args...)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	r.cmd, r.exited = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		close(r.exited)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !redisPong(r.addr) {
		select {
		case <-r.exited:
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server exited at start: %s", lastLines(log, 5))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.kill()
			return fmt.Errorf("redis-server on %s did not answer within 10s", r.addr)
		}
	}
	return nil
}

// kill SIGKILLs the server and waits for it to be gone.
func (r *redisProc) kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
}

func redisPong(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "+PONG")
}
