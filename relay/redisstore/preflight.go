package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxSkew is the clock difference between a relay and Redis past which
// Preflight warns: leases and dedup windows are judged on each relay's
// clock, so relays must agree on the time to well within a lease.
const maxSkew = time.Second

// Preflight reads the settings of the Redis behind rdb on which the relay's
// guarantees depend, before the relay starts. It returns an error when
// Redis may evict keys of its own accord (a maxmemory-policy of allkeys-*):
// queued events would vanish. It returns warnings, each naming the setting,
// when an acked event could be lost in a crash of Redis or of its host
// (CheckDurability: appendonly no, appendfsync everysec or no), when marks and records with an expiry may be evicted
// early (volatile-*: a duplicate could be delivered again), when this
// host's clock is more than a second off Redis's, and when the settings
// cannot be read (CONFIG is often disabled on managed Redis). now is this
// host's clock.
func Preflight(ctx context.Context, rdb redis.UniversalClient, now func() time.Time) (warnings []string, err error) {
	settings, err := readConfig(ctx, rdb, "maxmemory-policy")
	if err != nil {
		warnings = append(warnings, fmt.Sprintf("could not read Redis's maxmemory-policy (%v); make sure it is noeviction, or queued webhooks can be evicted", err))
	}
	for _, v := range settings["maxmemory-policy"] {
		switch {
		case strings.HasPrefix(v, "allkeys-"):
			return warnings, fmt.Errorf("redis maxmemory-policy is %q: at maxmemory Redis would evict queued webhooks; set maxmemory-policy noeviction (CONFIG SET maxmemory-policy noeviction, and in redis.conf)", v)
		case strings.HasPrefix(v, "volatile-"):
			warnings = append(warnings, fmt.Sprintf("Redis maxmemory-policy is %q: at maxmemory Redis evicts keys with an expiry, dedup marks among them, so a duplicate could be delivered again; noeviction is safe", v))
		}
	}
	if d := CheckDurability(ctx, rdb); d.Warning != "" {
		warnings = append(warnings, d.Warning)
	}
	if skew, err := clockSkew(ctx, rdb, now); err == nil && (skew > maxSkew || skew < -maxSkew) {
		warnings = append(warnings, fmt.Sprintf("this host's clock is %s off Redis's: relays judge leases and dedup windows on their own clocks; keep every relay's clock in sync (NTP)", skew.Round(time.Millisecond)))
	}
	return warnings, nil
}

// readConfig returns the values of CONFIG GET for each key: one per server,
// every master of a Cluster.
func readConfig(ctx context.Context, rdb redis.UniversalClient, keys ...string) (map[string][]string, error) {
	out := map[string][]string{}
	var mu sync.Mutex // ForEachMaster reads the masters at once
	read := func(ctx context.Context, c redis.UniversalClient) error {
		for _, k := range keys {
			m, err := c.ConfigGet(ctx, k).Result()
			if err != nil {
				return err
			}
			if v, ok := m[k]; ok {
				mu.Lock()
				out[k] = append(out[k], v)
				mu.Unlock()
			}
		}
		return nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return read(ctx, c) })
		return out, err
	}
	return out, read(ctx, rdb)
}

// clockSkew is how far now is ahead of Redis's TIME, taken at the middle
// of the round trip.
func clockSkew(ctx context.Context, rdb redis.UniversalClient, now func() time.Time) (time.Duration, error) {
	before := now()
	t, err := rdb.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	after := now()
	mid := before.Add(after.Sub(before) / 2)
	return mid.Sub(t), nil
}
