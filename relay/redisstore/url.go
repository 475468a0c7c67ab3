package redisstore

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPoolSize is how many connections a relay keeps to Redis at most.
// Every ingest holds one for its round trip, which with appendfsync always
// includes Redis's fsync: go-redis's default (10 per CPU) let only 20 of 64
// concurrent webhooks reach Redis at once on two cores, and Redis fsyncs
// once for all the commands it read together, so more connections in use
// means more webhooks per fsync.
const DefaultPoolSize = 128

// NewClient connects to the Redis that rawURL names:
//
//	redis://[user:password@]host:port[/db]       one server (rediss:// for TLS)
//	redis+sentinel://[user:password@]host:port[,host:port…]/master[/db]
//	redis+cluster://[user:password@]host:port[,host:port…]
//
// Sentinel and Cluster take several seed addresses, comma-separated.
// The pool holds up to DefaultPoolSize connections (per node of a
// cluster); a redis:// URL may set its own with ?pool_size=N.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("redis url: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss":
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redis url: %w", err)
		}
		if !u.Query().Has("pool_size") {
			o.PoolSize = DefaultPoolSize
		}
		return redis.NewClient(o), nil
	case "redis+sentinel", "redis+cluster":
	default:
		return nil, fmt.Errorf("redis url: scheme %q is not one of redis, rediss, redis+sentinel, redis+cluster", u.Scheme)
	}
	addrs := strings.Split(u.Host, ",")
	if u.Host == "" || len(addrs) == 0 {
		return nil, fmt.Errorf("redis url: no host:port")
	}
	o := &redis.UniversalOptions{Addrs: addrs, PoolSize: DefaultPoolSize}
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if u.Scheme == "redis+cluster" {
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("redis url: a cluster URL has no path (Cluster has one database)")
		}
		return redis.NewClusterClient(o.Cluster()), nil
	}
	if parts[0] == "" {
		return nil, fmt.Errorf("redis url: a sentinel URL names the master: redis+sentinel://host:port/MASTER[/db]")
	}
	o.MasterName = parts[0]
	if len(parts) > 1 {
		if o.DB, err = strconv.Atoi(parts[1]); err != nil {
			return nil, fmt.Errorf("redis url: database %q is not a number", parts[1])
		}
	}
	return redis.NewFailoverClient(o.Failover()), nil
}

// SetLogger sends go-redis's own messages (dial failures, pool trouble)
// to log as JSON-friendly warnings instead of plain lines on stderr, at most
// one a second: during an outage it would otherwise print dozens a second.
// go-redis has one logger per process, so this is process-wide.
func SetLogger(log *slog.Logger) {
	redis.SetLogger(&redisLogger{log: log})
}

type redisLogger struct {
	log        *slog.Logger
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < time.Second {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn("redis client", "detail", fmt.Sprintf(format, v...), "suppressed_since_last", suppressed)
}
