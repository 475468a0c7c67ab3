package redisstore

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/redis/go-redis/v9"
)

// CheckDurability reads the persistence settings of the Redis behind rdb
// (every master of a Cluster; the worst counts): CONFIG GET appendonly
// and appendfsync, or, where CONFIG is disabled (managed Redis often
// disables it), INFO persistence, which tells whether the append-only file
// is on but not how often it is fsync'd.
func CheckDurability(ctx context.Context, rdb redis.UniversalClient) relay.Durability {
	settings, err := readConfig(ctx, rdb, "appendonly", "appendfsync")
	if err != nil || len(settings["appendonly"]) == 0 {
		return durabilityFromInfo(ctx, rdb, err)
	}
	d := relay.Durability{Loss: relay.LossNone, Settings: map[string]string{}}
	for _, v := range settings["appendonly"] {
		d.Settings["appendonly"] = v
		if v != "yes" {
			return relay.Durability{Loss: relay.LossRestart, Settings: map[string]string{"appendonly": v},
				Warning: "Redis appendonly is " + v + ": acked webhooks written since Redis's last snapshot are lost if Redis stops; set appendonly yes and appendfsync always"}
		}
	}
	for _, v := range settings["appendfsync"] {
		d.Settings["appendfsync"] = v
		switch v {
		case "always":
		case "everysec":
			d.Loss = relay.LossHostFailure
			d.Warning = "Redis appendfsync is everysec: up to a second of acked webhooks is lost if the Redis host fails; set appendfsync always to lose none"
		default:
			d.Loss = relay.LossHostFailure
			d.Warning = "Redis appendfsync is " + v + ": acked webhooks the OS has not flushed yet (up to about 30 s) are lost if the Redis host fails; set appendfsync always"
			return d
		}
	}
	return d
}

// durabilityFromInfo is CheckDurability from INFO persistence, after
// CONFIG GET failed with cfgErr.
func durabilityFromInfo(ctx context.Context, rdb redis.UniversalClient, cfgErr error) relay.Durability {
	unknown := relay.Durability{Loss: relay.LossUnknown,
		Warning: fmt.Sprintf("could not read Redis's persistence settings (%v); make sure appendonly is yes and appendfsync always, or acked webhooks can be lost", cfgErr)}
	var aof []string
	var mu sync.Mutex // ForEachMaster reads the masters at once
	read := func(ctx context.Context, c redis.UniversalClient) error {
		info, err := c.Info(ctx, "persistence").Result()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "aof_enabled:"); ok {
				mu.Lock()
				aof = append(aof, v)
				mu.Unlock()
			}
		}
		return nil
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return read(ctx, c) })
	} else {
		err = read(ctx, rdb)
	}
	if err != nil || len(aof) == 0 {
		return unknown
	}
	for _, v := range aof {
		if v != "1" {
			return relay.Durability{Loss: relay.LossRestart, Settings: map[string]string{"aof_enabled": v},
				Warning: "Redis's append-only file is off (INFO persistence aof_enabled:" + v + "): acked webhooks written since Redis's last snapshot are lost if Redis stops; set appendonly yes and appendfsync always"}
		}
	}
	return relay.Durability{Loss: relay.LossUnknown, Settings: map[string]string{"aof_enabled": "1"},
		Warning: "Redis's append-only file is on (INFO persistence), but CONFIG is disabled, so appendfsync is unknown: unless it is always, acked webhooks can be lost if the Redis host fails"}
}

// Durability implements relay.DurabilityReporter: what CheckDurability
// found when the store was created, nil until it answered.
func (s *Store) Durability() *relay.Durability {
	return s.durability.Load()
}

// checkDurability runs CheckDurability for Durability, retrying every
// few seconds while Redis does not answer.
func (s *Store) checkDurability() {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		d := CheckDurability(cctx, s.rdb)
		ccancel()
		if ctx.Err() != nil {
			return
		}
		if d.Loss != relay.LossUnknown || d.Settings != nil {
			s.durability.Store(&d)
			return
		}
		if s.rdb.Ping(ctx).Err() == nil {
			s.durability.Store(&d) // Redis answers; its settings stay unknown
			return
		}
		select {
		case <-s.stop:
			return
		case <-time.After(5 * time.Second):
		}
	}
}
