package redisstore_test

import (
	"strings"
	"testing"

	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/redis/go-redis/v9"
)

// A prefix without keys gets this layout; one that the first layout wrote,
// or a later one, is refused with what to do.
func TestCheckLayout(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: startRedis(t)})
	defer rdb.Close()
	ctx := t.Context()
	if err := redisstore.CheckLayout(ctx, rdb, "fresh"); err != nil {
		t.Fatalf("CheckLayout on an empty prefix: %v", err)
	}
	if v, err := rdb.Get(ctx, "{fresh}:layout").Result(); err != nil || v != "4" {
		t.Errorf("layout key after CheckLayout = %q, %v; want 4", v, err)
	}
	if err := redisstore.CheckLayout(ctx, rdb, "fresh"); err != nil {
		t.Errorf("CheckLayout again: %v", err)
	}
	rdb.SAdd(ctx, "{old}:indexes", "{old}:i:e")
	rdb.ZAdd(ctx, "{old}:i:e", redis.Z{Member: "evt_1"})
	err := redisstore.CheckLayout(ctx, rdb, "old")
	if err == nil || !strings.Contains(err.Error(), "layout 1") || !strings.Contains(err.Error(), "store.redis.prefix") || strings.Contains(err.Error(), "\n") {
		t.Errorf("CheckLayout on keys of the first layout = %v; want one line naming layout 1 and what to do", err)
	}
	if n, _ := rdb.Exists(ctx, "{old}:layout").Result(); n != 0 {
		t.Error("CheckLayout marked a prefix of the first layout as the new one")
	}
	// Layout 2 is read and kept as it is (the store writes it as its
	// relays read it).
	rdb.Set(ctx, "{two}:layout", "2", 0)
	if err := redisstore.CheckLayout(ctx, rdb, "two"); err != nil {
		t.Errorf("CheckLayout on layout 2: %v", err)
	}
	if v, _ := rdb.Get(ctx, "{two}:layout").Result(); v != "2" {
		t.Errorf("layout key of a layout 2 prefix after CheckLayout = %q, want 2 still", v)
	}
	rdb.Set(ctx, "{newer}:layout", "5", 0)
	if err := redisstore.CheckLayout(ctx, rdb, "newer"); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("CheckLayout on layout 5 = %v; want a refusal naming a newer version", err)
	}
}
