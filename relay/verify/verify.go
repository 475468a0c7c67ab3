// Package verify proves that an inbound webhook comes from its sender, and
// signs outbound deliveries the way Standard Webhooks receivers expect.
//
// Inbound, New builds one Verifier per source from its Settings. The kinds
// are:
//
//   - "none": every request passes.
//   - "token": a shared token in the configured header ("Bearer " is
//     stripped when the header is Authorization), or in the query parameter
//     "token" when no header is configured.
//   - "hmac-sha256": the HMAC-SHA256 of the raw body, keyed with the secret
//     string's bytes, in the configured header as hex or base64, optionally
//     after "sha256="; several may be given, separated by commas or spaces.
//   - "standard-webhooks": the Standard Webhooks scheme, headers webhook-id,
//     webhook-timestamp and webhook-signature, keyed with the base64 part of
//     a "whsec_" secret, and a timestamp no further than the tolerance from
//     now in either direction.
//
// Every kind accepts any of several secrets so that one can be rotated
// without downtime. Every secret is compared in constant time and all of
// them are tried, so that timing tells neither how much of a value was
// right nor which secret matched. Secrets are decoded once, in New.
//
// A rejection is a *Failure whose Reason is a short fixed word ("missing",
// "malformed", "mismatch", "stale", "future", or "unconfigured" for a
// Verifier not built by New) for a metric label; Reason extracts it from
// any error. Its message never holds a secret or the value presented.
//
// Outbound, a Signer computes the Webhook-Signature header of docs/http.md, and
// SignRequest signs a test request for "hooxrelay send --secret".
package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultTolerance is the standard-webhooks clock skew allowed when the
// settings leave it at 0; it is the Standard Webhooks recommendation.
const DefaultTolerance = 5 * time.Minute

// The kinds of verification, as a source's verify.kind names them.
const (
	KindNone             = "none"
	KindToken            = "token"
	KindHMACSHA256       = "hmac-sha256"
	KindStandardWebhooks = "standard-webhooks"
)

// Settings say how a source proves that a request comes from its sender:
// Kind is one of the Kind constants; Header is where the token or
// signature is (see the package comment); any one of Secrets passes, so
// that a secret can be rotated without downtime; Tolerance bounds the
// standard-webhooks clock skew, 0 meaning DefaultTolerance. The zero value
// has no kind, and New refuses it.
type Settings struct {
	Kind      string
	Header    string
	Secrets   []string
	Tolerance time.Duration
}

// Standard Webhooks header names, in canonical form so that lookups need no
// canonicalising.
const (
	headerID        = "Webhook-Id"
	headerTimestamp = "Webhook-Timestamp"
	headerSignature = "Webhook-Signature"
)

type kind uint8

const (
	kindUnset kind = iota // the zero Verifier: fails closed
	kindNone
	kindToken
	kindHMAC
	kindStandard
)

// Verifier checks inbound requests for one source. Build it with New; the
// zero Verifier and a nil *Verifier reject every request with reason
// ReasonUnconfigured. It is safe for concurrent use and must not be copied.
type Verifier struct {
	kind      kind
	header    string // canonical; "" for a token in the query
	bearer    bool   // header is Authorization: strip the "Bearer " scheme
	tokens    [][sha256.Size]byte
	keys      [][]byte
	tolerance time.Duration
	pool      sync.Pool // *macState, so that a request allocates no HMAC

	// The failures are built here, not per request: a flood of bad
	// requests then costs no allocation.
	errMissing, errMalformed, errMismatch error
	errMissingID, errMissingTS, errBadTS  error
	errStale, errFuture                   error
}

// New builds the Verifier for v; a Tolerance of 0 means DefaultTolerance.
// It refuses a block that could never pass a request, naming the setting to
// fix but never quoting a secret: an unknown kind, a kind other than none
// without secrets, an empty secret, hmac-sha256 without a header, a
// standard-webhooks secret that is not base64 after an optional "whsec_",
// a negative tolerance. Header is ignored for standard-webhooks.
func New(v Settings) (*Verifier, error) {
	tol := v.Tolerance
	switch {
	case tol < 0:
		return nil, fmt.Errorf("verify.tolerance: must not be negative, got %v", tol)
	case tol == 0:
		tol = DefaultTolerance
	}
	ver := &Verifier{tolerance: tol}
	switch v.Kind {
	case KindNone:
		ver.kind = kindNone
		return ver, nil
	case KindToken:
		ver.kind = kindToken
	case KindHMACSHA256:
		ver.kind = kindHMAC
		if v.Header == "" {
			return nil, fmt.Errorf("verify.header: is required for kind %q", v.Kind)
		}
	case KindStandardWebhooks:
		ver.kind = kindStandard
	default:
		return nil, fmt.Errorf("verify.kind: must be one of %q, %q, %q or %q, got %q",
			KindNone, KindToken, KindHMACSHA256, KindStandardWebhooks, v.Kind)
	}
	if len(v.Secrets) == 0 {
		return nil, fmt.Errorf("verify.secrets: at least one secret is required for kind %q", v.Kind)
	}
	for i, s := range v.Secrets {
		if s == "" {
			return nil, fmt.Errorf("verify.secrets[%d]: is empty", i)
		}
		switch ver.kind {
		case kindToken:
			ver.tokens = append(ver.tokens, sha256.Sum256([]byte(s)))
		case kindHMAC:
			ver.keys = append(ver.keys, []byte(s))
		case kindStandard:
			key, err := parseKey(s)
			if err != nil {
				return nil, fmt.Errorf("verify.secrets[%d]: %w", i, err)
			}
			ver.keys = append(ver.keys, key)
		}
	}
	ver.pool.New = func() any { return newMACState(ver.keys) }

	if v.Header != "" && ver.kind != kindStandard {
		ver.header = http.CanonicalHeaderKey(v.Header)
		ver.bearer = ver.header == "Authorization"
	}
	switch ver.kind {
	case kindToken:
		where := fmt.Sprintf("query parameter %q", "token")
		if ver.header != "" {
			where = fmt.Sprintf("header %q", ver.header)
		}
		ver.errMissing = fail(ReasonMissing, "token %s is missing or empty", where)
		ver.errMismatch = fail(ReasonMismatch, "token in %s matches no secret", where)
	case kindHMAC:
		ver.errMissing = fail(ReasonMissing, "signature header %q is missing or empty", ver.header)
		ver.errMalformed = fail(ReasonMalformed, "signature header %q holds no hex or base64 HMAC-SHA256", ver.header)
		ver.errMismatch = fail(ReasonMismatch, "signature in header %q matches no secret", ver.header)
	case kindStandard:
		ver.errMissingID = fail(ReasonMissing, "header %q is missing or empty", headerID)
		ver.errMissingTS = fail(ReasonMissing, "header %q is missing or empty", headerTimestamp)
		ver.errMissing = fail(ReasonMissing, "header %q is missing or empty", headerSignature)
		ver.errBadTS = fail(ReasonMalformed, "header %q is not unix seconds", headerTimestamp)
		ver.errMalformed = fail(ReasonMalformed, "header %q holds no well-formed v1 signature", headerSignature)
		ver.errMismatch = fail(ReasonMismatch, "no v1 signature in header %q matches a secret", headerSignature)
		ver.errStale = fail(ReasonStale, "header %q is more than %v in the past", headerTimestamp, tol)
		ver.errFuture = fail(ReasonFuture, "header %q is more than %v in the future", headerTimestamp, tol)
	}
	return ver, nil
}

// Verify checks one request: its headers, its URL query (read only for a
// token in the query; nil is fine otherwise), its raw body and the time it
// arrived. It returns nil or a *Failure.
func (v *Verifier) Verify(h http.Header, query url.Values, body []byte, now time.Time) error {
	if v == nil {
		return errUnconfigured
	}
	switch v.kind {
	case kindNone:
		return nil
	case kindToken:
		return v.token(h, query)
	case kindHMAC:
		return v.hmacSHA256(h, body)
	case kindStandard:
		return v.standard(h, body, now)
	}
	return errUnconfigured
}

// VerifyRequest is Verify for an *http.Request whose body has already been
// read; it parses the URL query only when the token is expected there.
func (v *Verifier) VerifyRequest(r *http.Request, body []byte, now time.Time) error {
	var q url.Values
	if v != nil && v.kind == kindToken && v.header == "" {
		q = r.URL.Query()
	}
	return v.Verify(r.Header, q, body, now)
}

func (v *Verifier) token(h http.Header, q url.Values) error {
	var tok string
	if v.header == "" {
		tok = q.Get("token")
	} else {
		tok = h.Get(v.header)
		if v.bearer {
			tok = stripBearer(tok)
		}
	}
	if tok == "" {
		return v.errMissing
	}
	// Hashing makes the compare independent of the token's length, which
	// ConstantTimeCompare would otherwise leak. The pooled scratch buffer
	// spares a copy of a long token.
	st := v.get()
	st.prefix = append(st.prefix[:0], tok...)
	sum := sha256.Sum256(st.prefix)
	v.put(st)
	ok := 0
	for i := range v.tokens {
		ok |= subtle.ConstantTimeCompare(sum[:], v.tokens[i][:])
	}
	if ok == 0 {
		return v.errMismatch
	}
	return nil
}

// stripBearer removes the RFC 6750 "Bearer " scheme, whose name is
// case-insensitive; exactly one space goes, so that the token is compared
// as sent. A bare token is kept, for senders that leave the scheme out.
func stripBearer(s string) string {
	const scheme = "Bearer "
	if len(s) >= len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) {
		return s[len(scheme):]
	}
	if strings.EqualFold(s, "Bearer") {
		return "" // net/http trims the space of "Bearer " with no token
	}
	return s
}

func (v *Verifier) hmacSHA256(h http.Header, body []byte) error {
	vals := h.Values(v.header)
	if blank(vals) {
		return v.errMissing
	}
	st := v.get()
	defer v.put(st)
	st.sum(nil, body)

	// Compare every candidate with every secret's MAC, with no early exit.
	var sig [sha256.Size]byte
	ok, wellFormed := 0, false
	for _, val := range vals {
		for f := range strings.FieldsFuncSeq(val, isListSep) {
			if len(f) >= 7 && strings.EqualFold(f[:7], "sha256=") {
				f = f[7:]
			}
			if !decodeHex(f, &sig) && !decodeBase64(f, &sig) {
				continue
			}
			wellFormed = true
			ok |= st.match(&sig)
		}
	}
	switch {
	case ok == 1:
		return nil
	case wellFormed:
		return v.errMismatch
	}
	return v.errMalformed
}

func (v *Verifier) standard(h http.Header, body []byte, now time.Time) error {
	id := h.Get(headerID)
	if id == "" {
		return v.errMissingID
	}
	tsRaw := h.Get(headerTimestamp)
	if tsRaw == "" {
		return v.errMissingTS
	}
	vals := h.Values(headerSignature)
	if blank(vals) {
		return v.errMissing
	}
	ts, err := strconv.ParseInt(tsRaw, 10, 64)
	if err != nil {
		return v.errBadTS
	}
	// The clock comes before the MAC because it is far cheaper, and the
	// order tells a caller nothing secret: the timestamp is public.
	if err := v.checkTime(ts, now); err != nil {
		return err
	}

	st := v.get()
	defer v.put(st)
	// The timestamp is signed as sent, not as reformatted: the signature
	// covers the bytes the sender chose.
	st.prefix = append(append(append(append(st.prefix[:0], id...), '.'), tsRaw...), '.')
	st.sum(st.prefix, body)

	var sig [sha256.Size]byte
	ok, wellFormed := 0, false
	for _, val := range vals {
		for f := range strings.FieldsSeq(val) {
			version, b64, found := strings.Cut(f, ",")
			if !found || version != "v1" {
				continue // other versions, such as v1a, are for other schemes
			}
			if !decodeBase64(b64, &sig) {
				continue
			}
			wellFormed = true
			ok |= st.match(&sig)
		}
	}
	switch {
	case ok == 1:
		return nil
	case wellFormed:
		return v.errMismatch
	}
	return v.errMalformed
}

// maxSkewSeconds keeps the arithmetic in checkTime far from overflow for
// any timestamp a client can send; nothing that far off is near the window.
const maxSkewSeconds = 1 << 40

func (v *Verifier) checkTime(ts int64, now time.Time) error {
	n := now.Unix()
	switch {
	case ts < n-maxSkewSeconds:
		return v.errStale
	case ts > n+maxSkewSeconds:
		return v.errFuture
	}
	d := now.Sub(time.Unix(ts, 0))
	switch {
	case d > v.tolerance:
		return v.errStale
	case d < -v.tolerance:
		return v.errFuture
	}
	return nil
}

func (v *Verifier) get() *macState { return v.pool.Get().(*macState) }

func (v *Verifier) put(st *macState) {
	st.release()
	v.pool.Put(st)
}

func blank(vals []string) bool {
	for _, s := range vals {
		if strings.TrimSpace(s) != "" {
			return false
		}
	}
	return true
}

func isListSep(r rune) bool { return r == ',' || r == ' ' || r == '\t' }

// macState is one HMAC per key plus scratch space, pooled so that a request
// neither allocates hashers nor shares them with another goroutine.
type macState struct {
	macs   []hash.Hash
	sums   [][sha256.Size]byte
	prefix []byte
}

func newMACState(keys [][]byte) *macState {
	st := &macState{
		macs: make([]hash.Hash, len(keys)),
		sums: make([][sha256.Size]byte, len(keys)),
	}
	for i, k := range keys {
		st.macs[i] = hmac.New(sha256.New, k)
	}
	return st
}

// maxScratch bounds the scratch buffer a pooled state keeps, so that one
// request with a huge header does not pin its size in memory.
const maxScratch = 4 << 10

func (st *macState) release() {
	if cap(st.prefix) > maxScratch {
		st.prefix = nil
	}
}

// sum computes every key's MAC of prefix followed by body.
func (st *macState) sum(prefix, body []byte) {
	for i, m := range st.macs {
		m.Reset()
		m.Write(prefix)
		m.Write(body)
		m.Sum(st.sums[i][:0])
	}
}

// match reports 1 when sig equals any key's MAC, 0 otherwise, comparing with
// all of them.
func (st *macState) match(sig *[sha256.Size]byte) int {
	ok := 0
	for i := range st.sums {
		ok |= subtle.ConstantTimeCompare(sig[:], st.sums[i][:])
	}
	return ok
}

// parseKey decodes a Standard Webhooks secret. The "whsec_" prefix is
// optional, as in the reference libraries. The error never quotes the
// secret.
func parseKey(s string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New(`must be "whsec_<base64>"; the part after whsec_ is not valid base64`)
	}
	return key, nil
}

// decodeHex decodes a 64-digit hex SHA-256 digest in either case. It works
// on the string so that no []byte copy is made.
func decodeHex(s string, dst *[sha256.Size]byte) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Strict decoders refuse non-zero padding bits, so that each digest has
// exactly one accepted spelling per alphabet.
var (
	b64Std    = base64.StdEncoding.Strict()
	b64URL    = base64.URLEncoding.Strict()
	b64RawStd = base64.RawStdEncoding.Strict()
	b64RawURL = base64.RawURLEncoding.Strict()
)

// decodeBase64 decodes a SHA-256 digest in standard or URL base64, padded
// (44 characters) or not (43). Senders differ, and a length and alphabet
// check tells them apart without trying each decoder.
func decodeBase64(s string, dst *[sha256.Size]byte) bool {
	var enc *base64.Encoding
	url := strings.ContainsAny(s, "-_")
	switch {
	case len(s) == 44 && url:
		enc = b64URL
	case len(s) == 44:
		enc = b64Std
	case len(s) == 43 && url:
		enc = b64RawURL
	case len(s) == 43:
		enc = b64RawStd
	default:
		return false
	}
	// Copying into stack arrays keeps the decode free of allocations.
	var src [44]byte
	var out [33]byte
	n, err := enc.Decode(out[:], src[:copy(src[:], s)])
	if err != nil || n != sha256.Size {
		return false
	}
	copy(dst[:], out[:n])
	return true
}
