package bench

import (
	"context"
	"testing"

	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
	"github.com/redis/go-redis/v9"
)

// TestMeasureRedisCost runs the store-alone measurement of "bench --redis"
// on a Redis of its own: every figure is there, and no key is left behind.
func TestMeasureRedisCost(t *testing.T) {
	srv := redistest.Start(t, true)
	c, err := measureRedisCost(context.Background(), "redis://"+srv.Addr+"/0", 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", c)
	if c.Events != 500 || c.USPerIngest <= 0 || c.RefUSPerIngest <= 0 || c.CommandsPerIngest < 2 {
		t.Errorf("%d events, %.1f µs and %.1f commands per ingest; want 500 events, some time and at least two commands each", c.Events, c.USPerIngest, c.CommandsPerIngest)
	}
	// An event holds its ~180-byte payload, pending or delivered.
	if c.BytesPerPending < 180 || c.BytesPerDelivered < 180 {
		t.Errorf("%.0f bytes per pending event, %.0f per delivered; want each at least the payload", c.BytesPerPending, c.BytesPerDelivered)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	if n, err := rdb.DBSize(context.Background()).Result(); err != nil || n != 0 {
		t.Errorf("DBSIZE after the measurement = %d, %v; want its keys deleted", n, err)
	}
}
