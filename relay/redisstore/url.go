package redisstore

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// NewClient connects to the Redis that rawURL names:
//
//	redis://[user:password@]host:port[/db]       one server (rediss:// for TLS)
//	redis+sentinel://[user:password@]host:port[,host:port…]/master[/db]
//	redis+cluster://[user:password@]host:port[,host:port…]
//
// Sentinel and Cluster take several seed addresses, comma-separated.
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
		return redis.NewClient(o), nil
	case "redis+sentinel", "redis+cluster":
	default:
		return nil, fmt.Errorf("redis url: scheme %q is not one of redis, rediss, redis+sentinel, redis+cluster", u.Scheme)
	}
	addrs := strings.Split(u.Host, ",")
	if u.Host == "" || len(addrs) == 0 {
		return nil, fmt.Errorf("redis url: no host:port")
	}
	o := &redis.UniversalOptions{Addrs: addrs}
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
