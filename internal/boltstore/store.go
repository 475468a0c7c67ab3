// Package boltstore is the embedded store of hooxrelay before version 2:
// one bbolt file. The relay no longer serves from it: it is kept to read
// such a file for `hooxrelay store migrate` (Export), and to write one in
// the tests of the migration.
//
// Every write goes through one committer goroutine that gathers the writes
// waiting at that moment into a single transaction (group commit). The
// queue of pending deliveries is indexed in memory and rebuilt from the
// file on open; claims are held in memory only.
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ relay.Store = (*Store)(nil)

// Bucket names. Keys: events by event id; deliveries by delivery id;
// attempts by delivery id, NUL, 4-byte attempt number; dedup by source,
// NUL, dedup key. Values: see codec.go.
var (
	bktEvents     = []byte("events") // value: see encodeEvent
	bktDeliveries = []byte("deliveries")
	bktAttempts   = []byte("attempts")
	bktDedup      = []byte("dedup") // value: event id
	bktMeta       = []byte("meta")

	metaMarksPruned = []byte("marks_pruned_through") // event id
	allBuckets      = [][]byte{bktEvents, bktDeliveries, bktAttempts, bktDedup, bktMeta}
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Logger receives pruning and commit errors; nil discards them.
	Logger *slog.Logger
	// Retention is how long delivered and dead events are kept, counted
	// from their receive time; 0 keeps them forever.
	Retention time.Duration
	// DedupTTL is how long dedup marks are kept once expired marks are
	// pruned; marks older than the ttl given to Ingest are ignored anyway.
	// 0 never prunes them. SetDedupTTL changes it.
	DedupTTL time.Duration
	// PruneInterval is how often pruning runs; 0 means one minute.
	PruneInterval time.Duration
	// MaxBatch caps the writes that share one commit; 0 means 1024.
	MaxBatch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BeforeCommit, when set, runs in the committer before each
	// transaction, its writes already taken. Tests use it to hold the
	// disk still; nil in production.
	BeforeCommit func()
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	writes chan *write
	stop   chan struct{}
	wg     sync.WaitGroup

	// closeMu orders Close after every write being queued, so that none is
	// queued once the committer has drained and stopped.
	closeMu sync.RWMutex
	closed  bool

	// commitErr is the error of the last commit, nil once one succeeds:
	// Ping reports it, so that readiness follows a failing disk.
	commitErr atomic.Pointer[error]
	// dedupTTL is the ttl that pruning keeps marks for: Options.DedupTTL
	// until SetDedupTTL.
	dedupTTL atomic.Int64
	// busySince is when the transaction being committed started (unix
	// nanoseconds), 0 between commits: a disk that stopped answering shows
	// as a commit that does not end.
	busySince atomic.Int64
	// fault, when set, fails every commit, as a disk that refuses writes
	// does; only tests set it (export_test.go).
	fault atomic.Pointer[error]

	// ctx ends when Close starts; background work watches it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards queues, finished, freshBytes and deferred
	queues map[string]*queue
	// finished indexes each target's delivered and dead deliveries, so
	// that counts and dead letters are answered without a scan.
	finished map[string]*finished
	// freshBytes is the payload memory held by fresh queue items.
	freshBytes int
	// deferred holds completed outcomes not yet written: they ride along
	// with a later commit instead of each costing one (see Complete).
	deferred      []*write
	deferredSince time.Time
	deferKick     chan struct{}
}

// appendFill is how full bbolt packs the leaves of the buckets whose keys
// only grow (events and attempts are keyed by time-sorted ids and never
// rewritten): its default, half full, suits random inserts and doubles the
// file for these.
const appendFill = 0.9

// Deferred outcomes are written once this many wait, once the oldest has
// waited deferDelay, or at once when no ingest is waiting. Past
// maxDeferred, Complete waits for its write.
const (
	// maxFreshBytes bounds the payloads kept in memory for first claims;
	// past it, claims read from disk and memory stays flat with the backlog.
	maxFreshBytes = 32 << 20

	deferBatch  = 256
	deferDelay  = 20 * time.Millisecond
	maxDeferred = 8192
)

// Open opens or creates the store file at path (and its directory) and
// rebuilds the in-memory queue from it.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second, // another process holds the file lock
		// The freelist is rebuilt on open instead of written at every
		// commit: fewer pages per fsync on the hot path.
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // growing the map blocks readers; start big
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %q: the file is locked by another process (is a relay already running on it?)", path)
		}
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s := &Store{
		db:        db,
		opts:      opts,
		log:       log,
		writes:    make(chan *write, opts.MaxBatch),
		deferKick: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		queues:    make(map[string]*queue),
		finished:  make(map[string]*finished),
	}
	s.dedupTTL.Store(int64(opts.DedupTTL))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.load(); err != nil {
		s.cancel()
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.pruneLoop()
	return s, nil
}

// load creates the buckets and indexes every pending delivery.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		// Only the head of each record is read: this is a scan of every
		// delivery kept, so it must not decode them.
		return tx.Bucket(bktDeliveries).ForEach(func(k, v []byte) error {
			state, due, err := deliveryHead(v)
			if err != nil {
				return fmt.Errorf("delivery %q: %w", k, err)
			}
			id := string(k)
			_, target, ok := relay.SplitDeliveryID(id)
			if !ok {
				return fmt.Errorf("corrupt delivery key %q", k)
			}
			if state == relay.Pending {
				s.queue(target).put(id, due)
			} else {
				s.finishedOf(target).add(id, state)
			}
			return nil
		})
	})
}

func (s *Store) queue(target string) *queue {
	q, ok := s.queues[target]
	if !ok {
		q = newQueue()
		s.queues[target] = q
	}
	return q
}

// Close stops the committer after the writes already queued, and closes the
// file.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	close(s.stop)
	s.wg.Wait()
	return s.db.Close()
}

// stallAfter is how long a commit may run before Ping reports the store
// stuck: an fsync takes milliseconds, and a webhook gets 503 after 5s.
const stallAfter = 2 * time.Second

// Ping reports whether the store takes writes: it is open, no commit has
// been running for stallAfter, the last commit did not fail for the store's
// sake, and an empty commit (one fdatasync, shared with any other write
// waiting) completes before ctx ends.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	if since := s.busySince.Load(); since != 0 {
		if d := time.Since(time.Unix(0, since)); d > stallAfter {
			return fmt.Errorf("a write has been waiting on the disk for %s", d.Round(time.Second))
		}
	}
	if err := s.commitErr.Load(); err != nil {
		return fmt.Errorf("last write failed: %w", *err)
	}
	probe := &write{apply: func(*bolt.Tx) error { return nil }, abandonable: true}
	if err := s.submit(ctx, probe); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// Unwritten reports what the store holds that is not on disk yet: writes
// queued or being committed (ingests, whose senders have no answer yet, and
// operator actions) and outcomes deferred to a later commit (deliveries
// attempted again if they are lost). A Close that the disk holds up is
// reported with it.
func (s *Store) Unwritten() (writes, outcomes int) {
	s.mu.Lock()
	outcomes = len(s.deferred)
	s.mu.Unlock()
	writes = len(s.writes)
	if s.busySince.Load() != 0 {
		writes++ // at least the batch in the commit
	}
	return writes, outcomes
}

func (s *Store) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

func attemptKey(deliveryID string, n int) []byte {
	k := make([]byte, 0, len(deliveryID)+5)
	k = append(k, deliveryID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(n))
}

func dedupKey(source, key string) []byte {
	key = relay.MarkKey(key)
	k := make([]byte, 0, len(source)+1+len(key))
	k = append(k, source...)
	k = append(k, 0)
	return append(k, key...)
}

// Ingest implements relay.Queue.
func (s *Store) Ingest(ctx context.Context, ev *relay.Event, ttl time.Duration) (relay.IngestResult, error) {
	rec, err := encodeEvent(ev)
	if err != nil {
		return relay.IngestResult{}, err
	}
	dels := make([][]byte, len(ev.Targets))
	for i, t := range ev.Targets {
		d := relay.NewDelivery(ev, t)
		if dels[i], err = encodeDelivery(&d); err != nil {
			return relay.IngestResult{}, fmt.Errorf("encode delivery: %w", err)
		}
	}
	dk := dedupKey(ev.Source, ev.DedupKey)
	res := relay.IngestResult{EventID: ev.ID}
	w := &write{
		apply: func(tx *bolt.Tx) error {
			res = relay.IngestResult{EventID: ev.ID}
			if first := tx.Bucket(bktDedup).Get(dk); first != nil {
				if t, ok := relay.EventTime(string(first)); ok && ev.ReceivedAt.Sub(t) < ttl {
					res = relay.IngestResult{EventID: string(first), Duplicate: true}
					return nil
				}
			}
			id := []byte(ev.ID)
			evs := tx.Bucket(bktEvents)
			evs.FillPercent = appendFill
			if err := evs.Put(id, rec); err != nil {
				return err
			}
			if err := tx.Bucket(bktDedup).Put(dk, id); err != nil {
				return err
			}
			for i, t := range ev.Targets {
				did := []byte(relay.DeliveryID(ev.ID, t))
				if err := tx.Bucket(bktDeliveries).Put(did, dels[i]); err != nil {
					return err
				}
			}
			return nil
		},
		after: func() {
			if res.Duplicate {
				return
			}
			fresh := ev
			if s.freshBytes+len(ev.Payload) > maxFreshBytes {
				fresh = nil
			} else if len(ev.Targets) > 0 {
				s.freshBytes += len(ev.Payload)
			}
			for _, t := range ev.Targets {
				s.queue(t).putFresh(relay.DeliveryID(ev.ID, t), ev.ReceivedAt, fresh)
			}
		},
	}
	if err := s.submit(ctx, w); err != nil {
		return relay.IngestResult{}, fmt.Errorf("ingest %s: %w", ev.ID, err)
	}
	return res, nil
}
