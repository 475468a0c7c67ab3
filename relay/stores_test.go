package relay_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
)

// onStores runs test on a relay store of each kind: open returns a new,
// empty one at each call.
func onStores(t *testing.T, test func(t *testing.T, open func() relay.Store)) {
	t.Run("embedded", func(t *testing.T) {
		test(t, func() relay.Store {
			s, err := pebblestore.Open(filepath.Join(t.TempDir(), "replay"), pebblestore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t, false)
		n := 0
		test(t, func() relay.Store {
			n++
			rdb, err := redisstore.NewClient("redis://" + srv.Addr + "/0")
			if err != nil {
				t.Fatal(err)
			}
			return redisstore.New(rdb, redisstore.Options{Prefix: fmt.Sprintf("replay%d", n), Lease: 10 * time.Second})
		})
	})
}
