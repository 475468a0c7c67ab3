package relay

import (
	"net/netip"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/notify"
	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/hooxrelay/hooxrelay/relay/verify"
	"github.com/hooxrelay/hooxrelay/rules"
)

// Settings are what a Server needs to know of its configuration, in the
// relay's own terms: plain values, durations and address prefixes, with
// the routes already compiled. The command maps its config file onto them;
// tests build them in Go. A Server keeps the Settings it is given: do not
// change them, or the slices and maps they hold, afterwards.
type Settings struct {
	Server ServerSettings
	// DedupTTL is how long a webhook's dedup key holds: the same key
	// again within it is a duplicate.
	DedupTTL time.Duration
	// StoreKind names the store on /api/v1/status, such as "embedded".
	StoreKind string
	Sources   []SourceSettings
	Targets   []TargetSettings
	// Routes sends each event to its targets; nil routes nothing.
	Routes *rules.Table
	// Notify says who hears about what breaks; the zero value: nobody.
	Notify notify.Settings
}

// ServerSettings are the ingress and admin listeners' settings. The
// listeners themselves, the timeouts and the certificate files are read
// once, when the Server runs; a reload applies the rest.
type ServerSettings struct {
	// AdminToken is the bearer token of the admin API; "" leaves it open.
	AdminToken string
	// CertFile and KeyFile are the ingress certificate; both "" for plain
	// HTTP behind a proxy that terminates TLS.
	CertFile, KeyFile string
	// TrustedProxies are the peers whose X-Forwarded-For is believed; none
	// ignores the header.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes is the largest webhook body accepted; it must be
	// positive.
	MaxBodyBytes int64
	// MaxBufferedBodyBytes bounds the bytes of bodies being read at once,
	// across every source; 0 means 64 MiB.
	MaxBufferedBodyBytes int64
	// The ingress server's timeouts, as net/http's Server has them. The
	// write timeout must be positive: the answer to a webhook whose write
	// stalls leaves within three quarters of it.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds a shutdown, from its start: requests and
	// attempts still running then are cut off.
	ShutdownTimeout time.Duration
	// RejectedLog is how many refused webhook requests are kept for
	// GET /api/v1/rejected, the newest; 0 keeps none.
	RejectedLog int
}

// SourceSettings are one ingress endpoint: webhooks posted to Path are
// verified as Verify says, taken only from Allow (none: from anywhere) and
// rate-limited per client address (the zero RateLimit: unlimited).
type SourceSettings struct {
	Name, Path string
	Verify     verify.Settings
	Allow      []netip.Prefix
	RateLimit  RateLimit
}

// RateLimit is a token bucket: RPS tokens a second, at most Burst at once.
// RPS 0 means unlimited.
type RateLimit struct {
	RPS   float64
	Burst int
}

// TargetSettings are one target that events are delivered to, with limits
// of its own so that a slow target never holds back another. Reconfigure
// compares them whole: a target whose settings changed is replaced.
type TargetSettings struct {
	Name, URL string
	// Timeout bounds one attempt.
	Timeout time.Duration
	// MaxInFlight bounds the attempts under way at once; at least 1.
	MaxInFlight int
	// RateLimit paces attempts; the zero value does not.
	RateLimit RateLimit
	Retry     RetryPolicy
	Breaker   BreakerSettings
	// Headers are sent with every attempt.
	Headers map[string]string
	// SigningSecrets sign every attempt (Webhook-Signature), one
	// signature per secret; none leaves attempts unsigned.
	SigningSecrets []string
	TLS            TLSFiles
	// Request reshapes what the target gets: method, URL placeholders,
	// headers, body and auth. The zero value posts the payload as it
	// came to URL (which may still hold {path} placeholders).
	Request shape.Settings
	// Success are the statuses that deliver; none means any 2xx. Any
	// other 2xx is then the target saying no: dead.
	Success []int
}

// TLSFiles are the client side of TLS to a target: a private CA, and a
// client certificate for mutual TLS. Empty names mean the system roots and
// no client certificate.
type TLSFiles struct {
	CAFile, CertFile, KeyFile string
}

// RetryPolicy says when a failed delivery is tried again: attempt n+1
// waits InitialInterval × Multiplier^(n-1), at most MaxInterval, scaled by
// a random factor within ±Jitter. MaxAttempts counts the first attempt;
// past it, or once MaxAge has passed since the delivery was queued, the
// delivery is dead.
type RetryPolicy struct {
	MaxAttempts                  int
	InitialInterval, MaxInterval time.Duration
	Multiplier, Jitter           float64
	MaxAge                       time.Duration
}

// BreakerSettings are a target's circuit breaker: it opens when at least
// MinRequests attempts finished within Interval (0: counts never cleared)
// and FailureRatio of them failed, and lets one probe through OpenTimeout
// later.
type BreakerSettings struct {
	FailureRatio          float64
	MinRequests           int
	Interval, OpenTimeout time.Duration
}
