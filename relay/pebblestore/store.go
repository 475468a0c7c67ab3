// Package pebblestore is the embedded relay.Store: a pebble (LSM) database
// in one directory, no server.
//
// Each ingest is one batch (the event, its deliveries, the dedup mark and
// the index keys) committed with a synced WAL write before the webhook is
// acked; pebble's commit pipeline lets the batches of concurrent ingests
// share one WAL append and one fdatasync (group commit). Records are in a
// compact binary layout with a version byte first (codec.go), keys in
// keys.go.
//
// The queue lives in the store: a pending delivery is a key per target
// ordered by due time, and Claim reads the earliest from a per-target lower
// bound that moves past what was deleted, so that the tombstones of
// finished deliveries at the head of the queue are never walked again.
// Claims are held in memory only: deliveries in flight when the process
// died are pending again at the next start. Counts are counter keys
// updated in the same batches as the records; nothing kept in memory grows
// with the backlog.
package pebblestore

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hooxrelay/hooxrelay/relay"
)

var _ relay.Store = (*Store)(nil)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Logger receives pruning and storage errors; nil discards them.
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
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FS is the file system the database lives on; nil means the disk.
	// Tests give one that fails.
	FS vfs.FS
	// MemTableSize is pebble's memtable size; 0 means 32 MiB. Pebble
	// holds up to two (one filling, one being flushed), which is most of
	// the store's memory: with 64 MiB, a backlog of a million events took
	// the relay to 151 MiB.
	MemTableSize uint64
	// BeforeCommit, when set, runs before each commit. Tests use it to
	// hold the disk still; nil in production.
	BeforeCommit func()
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db    *pebble.DB
	cache *pebble.Cache // db's block cache
	opts  Options
	log   *slog.Logger

	// closeMu is held shared by every call while it uses the database,
	// and exclusively by Close, which so waits for them.
	closeMu sync.RWMutex
	closed  bool

	// marks serialise the check and write of one dedup key: stripes of
	// locks by the key's hash, held across the commit. Enough stripes
	// that two of 64 concurrent ingests rarely share one: with 256, a
	// fifth of them waited a whole commit for another key's.
	marks    [4096]sync.Mutex
	markSeed maphash.Seed

	// writeMu serialises the read-modify-writes of existing deliveries
	// (Complete, Release, SwapDeliveries, pruning), so that the record,
	// its queue key, its index keys and the counters move together.
	writeMu sync.Mutex

	// cmu guards cwait, the completions waiting to be written, cwriting,
	// set while the writer writes them, and cstopped, set once it stopped
	// (complete.go). ckick wakes the writer; cslots bounds the outcomes
	// queued without a caller waiting.
	cmu      sync.Mutex
	cwait    []*completion
	cwriting bool
	cstopped bool
	ckick    chan struct{}
	cslots   chan struct{}

	// events keeps the events of fanned out claims for the other targets'.
	events eventCache

	qmu    sync.Mutex // guards queues
	queues map[string]*queue
	// counts holds a *counts per target (counts.go).
	counts sync.Map

	// commitErr is the error of the last commit, nil once one succeeds:
	// Ping reports it, so that readiness follows a failing disk.
	commitErr atomic.Pointer[error]
	// broken is set once pebble reported a failed WAL write: its commit
	// pipeline does not recover from one, so every write fails until the
	// process restarts.
	broken atomic.Pointer[error]
	// fault, when set, fails every commit, as a disk that refuses writes
	// does; only tests set it (export_test.go).
	fault atomic.Pointer[error]

	dedupTTL atomic.Int64

	// oldIndexes is set when the store held task or status index keys
	// at open, written by earlier versions: pruning deletes them too.
	oldIndexes bool

	ctx    context.Context // ends when Close starts
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// blockCache is the size of pebble's block cache.
const blockCache = 32 << 20

// memTableReserve is how many memtables the block cache is made larger
// for: pebble's default stop-writes threshold, one filling and one being
// flushed.
const memTableReserve = 2

// ErrOldFile is the error of Open on a path that holds a bbolt file, the
// embedded store of earlier versions.
var ErrOldFile = errors.New("old store file")

// Open opens or creates the store directory dir.
func Open(dir string, opts Options) (*Store, error) {
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 32 << 20
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("%w: store.path %q is a file from an earlier hooxrelay (a bbolt store); this version keeps a directory: run `hooxrelay store migrate --from %s --to NEW_DIR` and set store.path to NEW_DIR", ErrOldFile, dir, dir)
	}
	po := &pebble.Options{
		FS:           opts.FS,
		MemTableSize: opts.MemTableSize,
		Merger:       counterMerger,
		Logger:       pebbleLogger{log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) { log.Error("store background error", "err", err) },
			DiskSlow: func(info pebble.DiskSlowInfo) {
				log.Warn("store disk slow", "path", info.Path, "op", info.OpType.String(), "duration", info.Duration)
			},
		},
	}
	// Pebble's L0 thresholds are kept: compacting L0 at 8 sublevels
	// instead of 4 halved the bytes compacted per ingest, but slowed
	// ingest as a backlog of a million events grew (docs/BENCHMARKS.md).

	// Bloom filters on every level but the last: a dedup check for a new
	// key is then a miss that reads no table above it. Pebble's Get never
	// reads the last level's filters (they are as large as its data
	// blocks), so writing them there only cost CPU, and the last level is
	// also the base level that L0 is compacted into while the store is
	// small.
	for i := range po.Levels {
		po.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	po.Levels[len(po.Levels)-1].FilterPolicy = pebble.NoFilterPolicy
	// A block cache that keeps the filter and index blocks of the tables
	// while claims read payloads: a dedup check then reads no block from
	// disk. Pebble takes the memtables' size out of the cache's (a
	// reservation, no memory), so the cache is made that much larger: a
	// cache of blockCache alone held nothing while a memtable existed, and
	// every table read went to the disk.
	po.Cache = pebble.NewCache(blockCache + int64(memTableReserve*opts.MemTableSize))
	defer po.Cache.Unref()
	db, err := pebble.Open(dir, po)
	if err != nil {
		if errors.Is(err, os.ErrExist) || isLockErr(err) {
			return nil, fmt.Errorf("open store %q: the directory is locked by another process (is a relay already running on it?): %w", dir, err)
		}
		return nil, fmt.Errorf("open store %q: %w", dir, err)
	}
	if err := checkFormat(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", dir, err)
	}
	s := &Store{db: db, cache: po.Cache, opts: opts, log: log, queues: make(map[string]*queue), markSeed: maphash.MakeSeed()}
	if err := s.loadCounts(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: read counts: %w", dir, err)
	}
	if s.oldIndexes, err = hasOldIndexes(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", dir, err)
	}
	s.dedupTTL.Store(int64(opts.DedupTTL))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.ckick, s.cslots = make(chan struct{}, 1), make(chan struct{}, maxQueuedOutcomes)
	s.wg.Add(2)
	go s.pruneLoop()
	go s.completionWriter()
	return s, nil
}

func isLockErr(err error) bool {
	var errno interface{ Temporary() bool }
	return errors.As(err, &errno) && errno.Temporary()
}

// checkFormat marks a new directory as this store's, and refuses one that
// another program or layout wrote.
func checkFormat(db *pebble.DB) error {
	v, closer, err := db.Get(metaFormat)
	if err == nil {
		defer closer.Close()
		if string(v) != formatName {
			return fmt.Errorf("the directory holds a store of layout %q, not %q: it was written by another version of hooxrelay", v, formatName)
		}
		return nil
	}
	if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	it, err := db.NewIter(nil)
	if err != nil {
		return err
	}
	empty := !it.First()
	if err := it.Close(); err != nil {
		return err
	}
	if !empty {
		return errors.New("the directory holds a pebble database that hooxrelay did not write; give store.path a new directory")
	}
	return db.Set(metaFormat, []byte(formatName), pebble.Sync)
}

// hasOldIndexes reports whether db holds a task or status index key.
func hasOldIndexes(db *pebble.DB) (bool, error) {
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{kTask}, UpperBound: []byte{kStatus + 1}})
	if err != nil {
		return false, err
	}
	found := it.First()
	return found, it.Close()
}

// enter marks a call in progress, or reports false once the store is
// closed; leave ends it.
func (s *Store) enter() bool {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return false
	}
	return true
}

func (s *Store) leave() { s.closeMu.RUnlock() }

// Close stops pruning, writes the outcomes still waiting, waits for the
// calls in progress, makes the write ahead log durable (outcomes are
// written without a sync of their own) and closes the database. Holds are
// dropped.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	s.wg.Wait()
	s.closeMu.Lock() // every call in progress has left
	defer s.closeMu.Unlock()
	var err error
	if s.broken.Load() == nil {
		err = s.probe()
	}
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// commit applies b, synced to disk when sync is set, and closes it. A
// commit without sync is in the WAL's next fdatasync, which the next
// synced commit (an ingest) makes.
func (s *Store) commit(b *batch, sync bool) (err error) {
	defer b.Close()
	if f := s.fault.Load(); f != nil {
		err = *f
		s.commitErr.Store(&err)
		return err
	}
	if e := s.broken.Load(); e != nil {
		return *e
	}
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("the store's disk failed a write, and the store takes no more writes until hooxrelay restarts: %w", fe)
			s.broken.Store(&err)
			s.commitErr.Store(&err)
			s.log.Error("store write failed", "err", err)
		}
	}()
	if s.opts.BeforeCommit != nil {
		s.opts.BeforeCommit()
	}
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	b.mergeCounts()
	if err = b.Commit(wo); err != nil {
		s.commitErr.Store(&err)
		s.log.Error("store commit failed", "err", err)
		return err
	}
	s.commitErr.Store(nil)
	s.applied(b)
	return nil
}

// probe makes one synced write: the WAL's fdatasync, shared with the
// ingests committing at the same time.
func (s *Store) probe() error {
	b := s.newBatch()
	if err := b.LogData(nil, nil); err != nil {
		b.Close()
		return err
	}
	return s.commit(b, true)
}

// Ping reports whether the store takes writes: it is open, the last
// commit did not fail, and a synced write completes before ctx ends.
func (s *Store) Ping(ctx context.Context) error {
	if !s.enter() {
		return relay.ErrClosed
	}
	errp := s.commitErr.Load()
	s.leave()
	if errp != nil {
		return fmt.Errorf("last write failed: %w", *errp)
	}
	done := make(chan error, 1)
	go func() {
		if !s.enter() {
			done <- relay.ErrClosed
			return
		}
		defer s.leave()
		done <- s.probe()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("probe write: %w", err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("probe write: the disk did not answer: %w", ctx.Err())
	}
}

// get returns a copy of the value of k, or nil when there is none.
func (s *Store) get(k []byte) ([]byte, error) {
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	return out, closer.Close()
}

// markLock returns the lock of the dedup mark k.
func (s *Store) markLock(k []byte) *sync.Mutex {
	return &s.marks[s.markStripe(k)]
}

func (s *Store) markStripe(k []byte) int {
	return int(maphash.Bytes(s.markSeed, k) % uint64(len(s.marks)))
}

// fatalError is what pebbleLogger.Fatalf panics with: pebble calls it on a
// failed WAL write, and commit turns it into an error.
type fatalError struct{ msg string }

func (e fatalError) Error() string { return e.msg }

// pebbleLogger passes pebble's messages to the relay's log. Pebble's
// default Fatalf exits the process; this one panics, so that a write the
// disk failed is an error for its caller (a 503) and a failing Ping,
// instead of the end of the relay.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	panic(fatalError{fmt.Sprintf(format, args...)})
}
