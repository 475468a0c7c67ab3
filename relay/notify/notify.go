// Package notify tells people when something breaks: a breaker opening, a
// delivery going dead, a paused target, a failing store, a growing backlog.
// Each notification endpoint has its own bounded queue and goroutine, so a
// slow or dead endpoint delays nothing but its own notifications, and
// never the ingress or the deliveries that report to it.
package notify

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/prometheus/client_golang/prometheus"
)

// Event types, as written in a notify entry's events list.
const (
	BreakerOpen      = "breaker_open"
	BreakerClosed    = "breaker_closed"
	DeadLetter       = "dead_letter"
	TargetPaused     = "target_paused"
	StoreUnavailable = "store_unavailable"
	BacklogAge       = "backlog_age"
)

// Types lists every event type.
var Types = []string{BreakerOpen, BreakerClosed, DeadLetter, TargetPaused, StoreUnavailable, BacklogAge}

// Kinds of endpoint.
const (
	KindSlack   = "slack"
	KindWebhook = "webhook"
)

// Endpoint is one place notifications go to.
type Endpoint struct {
	Name, URL, Kind string
	// SigningSecrets sign webhook bodies (Standard Webhooks); none leaves
	// them unsigned.
	SigningSecrets []string
	// Events are the types it hears about.
	Events []string
	// BacklogAge is the age of a target's oldest pending delivery past
	// which backlog_age fires; 0 never fires.
	BacklogAge time.Duration
	// MinInterval is the least time between two notifications of one
	// (type, target); what comes sooner is held back and counted.
	MinInterval time.Duration
}

// Settings are every endpoint and who hears about which target.
type Settings struct {
	Endpoints []Endpoint
	// Targets narrows the endpoints that hear about a target to those
	// named; a target not in it is heard about by every endpoint.
	Targets map[string][]string
}

// Event is something that happened. Target is "" for what concerns the
// relay as a whole (store_unavailable).
type Event struct {
	Type, Target, Detail string
	At                   time.Time
}

// Options are the parts of a Notifier that are not in its Settings.
type Options struct {
	Logger   *slog.Logger          // nil discards
	Registry prometheus.Registerer // nil: metrics kept unexported
	// Retries is how many times a failed send is tried again, Backoff the
	// first wait (doubled each time); 0 means 3 and 1s.
	Retries int
	Backoff time.Duration
	// Timeout bounds one send; 0 means 10s.
	Timeout time.Duration
	// QueueSize bounds each endpoint's queue; 0 means 256. A full queue
	// drops the notification (outcome dropped).
	QueueSize int
}

// Notifier sends events to the endpoints that want them. Safe for
// concurrent use; Notify never blocks.
type Notifier struct {
	opts  Options
	log   *slog.Logger
	total *prometheus.CounterVec
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup

	mu      sync.Mutex
	set     Settings
	senders map[string]*sender // by endpoint name
	windows map[key]*window
}

// key is what min_interval counts per.
type key struct{ notify, typ, target string }

// window is a key's last notification and what was held back since.
type window struct {
	last  time.Time
	held  int
	ev    Event // the last held one
	timer *time.Timer
}

// New returns a notifier with no endpoints; Configure gives it some.
func New(opts Options) *Notifier {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retries == 0 {
		opts.Retries = 3
	}
	if opts.Backoff == 0 {
		opts.Backoff = time.Second
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = 256
	}
	n := &Notifier{
		opts:    opts,
		log:     opts.Logger,
		senders: map[string]*sender{},
		windows: map[key]*window{},
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hooxrelay_notifications_total",
			Help: "Notifications by notify entry and outcome: sent, failed (after its retries), dropped (queue full), held (within min_interval, counted in the next one).",
		}, []string{"notify", "outcome"}),
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(n.total)
	}
	n.ctx, n.stop = context.WithCancel(context.Background())
	return n
}

// Configure replaces the endpoints. An endpoint whose settings did not
// change keeps its queue; the others' queued notifications are dropped.
func (n *Notifier) Configure(set Settings) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	next := map[string]*sender{}
	for _, e := range set.Endpoints {
		if s, ok := n.senders[e.Name]; ok && s.same(e) {
			next[e.Name] = s
			continue
		}
		s, err := newSender(e, n)
		if err != nil {
			return fmt.Errorf("notify %s: %w", e.Name, err)
		}
		next[e.Name] = s
	}
	for name, s := range n.senders {
		if next[name] != s {
			s.close()
		}
	}
	for name, s := range next {
		if n.senders[name] != s {
			n.wg.Go(func() { s.run(n.ctx) })
		}
		n.total.WithLabelValues(name, "sent")
		n.total.WithLabelValues(name, "failed")
	}
	n.senders, n.set = next, set
	return nil
}

// Check reports what Configure would refuse in set: a signing secret that
// is not one.
func Check(set Settings) error {
	for _, e := range set.Endpoints {
		if _, err := verify.NewSigner(e.SigningSecrets); err != nil {
			return fmt.Errorf("notify %s: %w", e.Name, err)
		}
	}
	return nil
}

// Close stops sending: notifications still queued are dropped.
func (n *Notifier) Close() {
	n.stop()
	n.mu.Lock()
	for _, w := range n.windows {
		if w.timer != nil {
			w.timer.Stop()
		}
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// BacklogAges returns the shortest backlog_age of the endpoints that hear
// of backlog_age, 0 when none does: how old a backlog must be to notify.
func (n *Notifier) BacklogAges() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	var least time.Duration
	for _, e := range n.set.Endpoints {
		if e.BacklogAge > 0 && slices.Contains(e.Events, BacklogAge) && (least == 0 || e.BacklogAge < least) {
			least = e.BacklogAge
		}
	}
	return least
}

// Notify queues ev for every endpoint that wants it, at most once per
// (type, target) per min_interval: the ones in between are counted, and
// the count goes out when the interval ends. It never blocks. For
// backlog_age, age is the backlog's age, which each endpoint compares with
// its own threshold; other types pass 0.
func (n *Notifier) Notify(ev Event, age time.Duration) {
	if n == nil {
		return
	}
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, e := range n.set.Endpoints {
		if !n.wants(e, ev, age) {
			continue
		}
		k := key{e.Name, ev.Type, ev.Target}
		w := n.windows[k]
		if w == nil {
			w = &window{}
			n.windows[k] = w
		}
		if wait := w.last.Add(e.MinInterval).Sub(ev.At); !w.last.IsZero() && wait > 0 {
			w.held++
			w.ev = ev
			n.total.WithLabelValues(e.Name, "held").Inc()
			if w.timer == nil {
				w.timer = time.AfterFunc(wait, func() { n.flush(k) })
			}
			continue
		}
		w.last = ev.At
		n.enqueue(e.Name, message{Event: ev})
	}
}

func (n *Notifier) wants(e Endpoint, ev Event, age time.Duration) bool {
	if !slices.Contains(e.Events, ev.Type) {
		return false
	}
	if ev.Type == BacklogAge && (e.BacklogAge <= 0 || age < e.BacklogAge) {
		return false
	}
	if names, ok := n.set.Targets[ev.Target]; ok && ev.Target != "" {
		return slices.Contains(names, e.Name)
	}
	return true
}

// flush sends what a key held back during its interval, as the last held
// event with the count.
func (n *Notifier) flush(k key) {
	n.mu.Lock()
	defer n.mu.Unlock()
	w := n.windows[k]
	if w == nil || w.held == 0 {
		return
	}
	w.timer = nil
	m := message{Event: w.ev, HeldBack: w.held}
	m.At = time.Now()
	w.last, w.held = m.At, 0
	n.enqueue(k.notify, m)
}

// enqueue hands m to the endpoint's queue, or drops it when full. Called
// with mu held.
func (n *Notifier) enqueue(name string, m message) {
	s := n.senders[name]
	if s == nil {
		return
	}
	select {
	case s.queue <- m:
	default:
		n.total.WithLabelValues(name, "dropped").Inc()
		n.log.Warn("notification dropped: the queue of this notify entry is full (its endpoint is slow or down)", "notify", name, "type", m.Type, "target", m.Target)
	}
}
