package verify

import (
	"errors"
	"fmt"
)

// Reasons a request fails verification. They are the only values Reason
// returns, so they can label a metric without growing its cardinality.
const (
	// ReasonMissing: no token or signature was presented (header or query
	// parameter absent or blank): usually a sender that was never told to sign.
	ReasonMissing = "missing"
	// ReasonMalformed: something was presented but cannot be decoded (bad hex
	// or base64, wrong length, no v1 entry, a timestamp that is not a number):
	// usually a sender using another scheme.
	ReasonMalformed = "malformed"
	// ReasonMismatch: a well-formed token or signature matched no secret:
	// a wrong or rotated secret, a tampered body, or a forgery.
	ReasonMismatch = "mismatch"
	// ReasonStale: a standard-webhooks timestamp older than the tolerance,
	// which is what a replayed request looks like.
	ReasonStale = "stale"
	// ReasonFuture: a standard-webhooks timestamp further ahead than the
	// tolerance: a sender whose clock is wrong.
	ReasonFuture = "future"
	// ReasonUnconfigured: the Verifier was not built by New. It fails closed
	// so that a forgotten constructor never opens a source.
	ReasonUnconfigured = "unconfigured"
	// ReasonUnknown is what Reason returns for an error that did not come
	// from this package.
	ReasonUnknown = "unknown"
)

// Failure is the error Verify returns. Reason is one of the Reason
// constants. The message names the header or parameter at fault but never a
// secret nor the value presented, because messages end up in logs.
//
// Failures are built once per Verifier and shared between calls so that a
// rejected request allocates nothing: treat them as read-only.
type Failure struct {
	Reason string
	msg    string
}

// Error returns the message, which is safe to log.
func (f *Failure) Error() string { return f.msg }

// Reason returns the reason of the *Failure in err's tree: "" for a nil
// error and ReasonUnknown for an error that holds no *Failure.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	if f, ok := errors.AsType[*Failure](err); ok {
		return f.Reason
	}
	return ReasonUnknown
}

func fail(reason, format string, args ...any) *Failure {
	return &Failure{Reason: reason, msg: fmt.Sprintf(format, args...)}
}

var errUnconfigured = fail(ReasonUnconfigured, "verifier not configured (build it with verify.New)")
