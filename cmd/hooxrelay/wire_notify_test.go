package main

import (
	"slices"
	"testing"

	"github.com/hooxrelay/hooxrelay/config"
	"github.com/hooxrelay/hooxrelay/relay/notify"
)

// The config accepts exactly the event types the notifier sends: config
// keeps its own list so that it does not import the core.
func TestNotifyEventsMatch(t *testing.T) {
	if !slices.Equal(config.NotifyEvents, notify.Types) {
		t.Fatalf("config.NotifyEvents = %q, notify.Types = %q; keep them the same", config.NotifyEvents, notify.Types)
	}
}
