package relay

import (
	"strconv"
	"testing"
)

// The ring keeps the newest entries, newest first, through wrap-arounds
// and resizes both ways.
func TestRejectedRing(t *testing.T) {
	l := newRejectedLog(3)
	add := func(from, to int) {
		for i := from; i <= to; i++ {
			l.add(RejectedJSON{Path: strconv.Itoa(i)})
		}
	}
	want := func(what string, paths ...string) {
		t.Helper()
		got := l.list(100)
		var have []string
		for _, e := range got {
			have = append(have, e.Path)
		}
		if len(have) != len(paths) {
			t.Fatalf("%s: list = %v, want %v", what, have, paths)
		}
		for i := range paths {
			if have[i] != paths[i] {
				t.Fatalf("%s: list = %v, want %v", what, have, paths)
			}
		}
	}
	want("empty")
	add(1, 2)
	want("filling", "2", "1")
	add(3, 7)
	want("wrapped", "7", "6", "5")
	if got := l.list(2); len(got) != 2 || got[0].Path != "7" {
		t.Errorf("list(2) = %v, want 7 and 6", got)
	}
	l.resize(5)
	want("grown", "7", "6", "5")
	add(8, 9)
	want("grown and filled", "9", "8", "7", "6", "5")
	add(10, 10)
	want("grown and wrapped", "10", "9", "8", "7", "6")
	l.resize(2)
	want("shrunk", "10", "9")
	add(11, 11)
	want("shrunk and wrapped", "11", "10")
	l.resize(0)
	add(12, 12)
	want("off")
	l.resize(1)
	add(13, 14)
	want("on again", "14")
}
