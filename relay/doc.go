// Package relay is the core of hooxrelay: the event and delivery types, the
// ingest handler that validates, deduplicates and durably stores Hoox
// webhooks, and the dispatcher that fans each event out to its targets with
// per-target rate limits, circuit breakers and retries.
//
// The relay declares the settings it needs (Settings, in settings.go) and
// never reads a config file: the command maps its config onto them.
// Storage is behind the Store interface declared here (store.go: the Queue
// and the Admin halves, and the retention contract); adapters live in
// sub-packages named after their technology (pebblestore, redisstore) and
// import relay, never the reverse. They keep records only: the records a
// delivery goes through besides an attempt's outcome are made in
// lifecycle.go (NewDelivery, Requeue, RequeueDead).
//
// One file per concern: ingest.go (the ingress), dispatch.go (the
// Dispatcher's lifecycle, reconfiguration and pauses), feed.go (a target's
// feeder: what to claim and when), slots.go, breaker.go, request.go (the
// request of an attempt), attempt.go (an attempt and its outcome),
// retry.go, transport.go, admin.go, server.go and run.go (a whole relay
// and its goroutines). docs/architecture.md walks one webhook through them.
package relay
