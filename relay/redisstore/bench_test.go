package redisstore_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
	"github.com/redis/go-redis/v9"
)

// BenchmarkIngest measures ingests from 64 concurrent callers into a Redis
// with appendfsync always, and reports the memory each pending event
// (two targets, a ~120-byte payload) costs Redis.
func BenchmarkIngest(b *testing.B) {
	srv := redistest.Start(b, true)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	s := redisstore.New(redis.NewClient(&redis.Options{Addr: srv.Addr, PoolSize: 64}), redisstore.Options{Prefix: "bench", Renew: -1})
	defer s.Close()
	used := func() float64 {
		info, err := rdb.Info(context.Background(), "memory").Result()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.SplitSeq(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				n, _ := strconv.ParseFloat(v, 64)
				return n
			}
		}
		b.Fatal("no used_memory in INFO")
		return 0
	}
	before := used()
	storetest.BenchIngest(b, s)
	b.ReportMetric((used()-before)/float64(b.N), "redis-bytes/event")
}
