// Package relay is the core of hooxrelay: the event and delivery types, the
// ingest handler that validates, deduplicates and durably stores Hoox
// webhooks, and the dispatcher that fans each event out to its targets with
// per-target rate limits, circuit breakers and retries.
//
// Storage is behind the Store interface declared here; adapters live in
// sub-packages named after their technology (boltstore, redisstore) and
// import relay, never the reverse.
package relay
