package redisstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

// The durability check reads each persistence setting of a real Redis,
// through CONFIG or, where CONFIG is disabled, INFO persistence, and
// names the setting that can lose acked webhooks.
func TestCheckDurability(t *testing.T) {
	cases := []struct {
		name    string
		durable bool
		args    []string
		loss    string
		setting string // part of the settings shown, as name=value
		warn    string // part of the warning; "" for none
	}{
		{"appendfsync always", true, nil, relay.LossNone, "appendfsync=always", ""},
		{"appendfsync everysec", true, []string{"--appendfsync", "everysec"}, relay.LossHostFailure, "appendfsync=everysec", "appendfsync is everysec"},
		{"appendfsync no", true, []string{"--appendfsync", "no"}, relay.LossHostFailure, "appendfsync=no", "appendfsync is no"},
		{"appendonly no", false, nil, relay.LossRestart, "appendonly=no", "appendonly is no"},
		{"CONFIG disabled, AOF on", true, []string{"--rename-command", "CONFIG", ""}, relay.LossUnknown, "aof_enabled=1", "appendfsync is unknown"},
		{"CONFIG disabled, AOF off", false, []string{"--rename-command", "CONFIG", ""}, relay.LossRestart, "aof_enabled=0", "aof_enabled:0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := redistest.Start(t, tc.durable, tc.args...)
			rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
			defer rdb.Close()
			d := redisstore.CheckDurability(t.Context(), rdb)
			name, value, _ := strings.Cut(tc.setting, "=")
			if d.Loss != tc.loss || d.Settings[name] != value {
				t.Errorf("CheckDurability = %+v, want loss %s and %s", d, tc.loss, tc.setting)
			}
			if (tc.warn == "") != (d.Warning == "") || !strings.Contains(d.Warning, tc.warn) {
				t.Errorf("warning %q, want one containing %q", d.Warning, tc.warn)
			}
			// A store reports what it found at start.
			s := redisstore.New(redis.NewClient(&redis.Options{Addr: r.Addr}), redisstore.Options{Prefix: "dur", Renew: -1})
			defer s.Close()
			storetest.Eventually(t, 5*time.Second, func() error {
				if got := s.Durability(); got == nil || got.Loss != tc.loss {
					return fmt.Errorf("store's Durability() = %+v, want loss %s", got, tc.loss)
				}
				return nil
			})
		})
	}
}
