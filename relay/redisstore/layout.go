package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// layoutKey is where the store records the version of its key layout.
func layoutKey(prefix string) string { return "{" + defaultPrefix(prefix) + "}:layout" }

func defaultPrefix(prefix string) string {
	if prefix == "" {
		return "hooxrelay"
	}
	return prefix
}

// checkLayoutScript records the newest layout on a prefix that holds
// none, unless keys only the first layout writes are there. It returns
// the version found: 0 for none, 1 for the first layout.
// KEYS: layout, then keys only the first layout has. ARGV: version.
var checkLayoutScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then
  return tonumber(v)
end
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return 1
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 0
`)

// CheckLayout makes sure the keys under prefix are in the layout this
// version writes: it records the layout on a prefix without keys, and
// refuses, with what to do, one that another version wrote.
func CheckLayout(ctx context.Context, rdb redis.UniversalClient, prefix string) error {
	pfx := "{" + defaultPrefix(prefix) + "}:"
	// The first layout kept a set of its indexes and an index of every
	// event; this one has neither.
	v, err := checkLayoutScript.Run(ctx, rdb, []string{layoutKey(prefix), pfx + "indexes", pfx + "i:e"}, dedupLayout).Int()
	if err != nil {
		return fmt.Errorf("read the key layout under the Redis prefix %q: %w", defaultPrefix(prefix), err)
	}
	switch v {
	case 0, layoutVersion, foldLayout, dedupLayout:
		// Layouts 2 and 3 are read and written as they are (a newer
		// layout's records or events would be lost on relays of that
		// layout still running): see the README on moving a prefix to
		// the next layout.
		return nil
	case 1:
		return fmt.Errorf("the Redis keys under the prefix %q are in key layout 1, written by an earlier hooxrelay, which this version (layouts 2 to 4) does not read: "+
			"drain them with the version that wrote them (pause the sources, wait until every delivery is final), then set store.redis.prefix to a new prefix, "+
			"or delete the keys {%s}:* if the events they hold may go", defaultPrefix(prefix), defaultPrefix(prefix))
	}
	return fmt.Errorf("the Redis keys under the prefix %q are in key layout %s, written by a %s version of hooxrelay than this one (layouts 2 to 4): run that version, or set store.redis.prefix to a new prefix",
		defaultPrefix(prefix), strconv.Itoa(v), map[bool]string{true: "newer", false: "older"}[v > dedupLayout])
}
