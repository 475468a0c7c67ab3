package verify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signer computes the Webhook-Signature header of outbound deliveries, one
// "v1," signature per secret so that a receiver keeps verifying while the
// secret is rotated. A nil *Signer and the zero Signer sign nothing: Sign
// returns "", so that a target without a signing_secret needs no special
// case. It is safe for concurrent use and must not be copied.
type Signer struct {
	keys [][]byte
	pool sync.Pool // *macState
}

// NewSigner decodes secrets, each "whsec_<base64>" (the prefix is
// optional, as for standard-webhooks verification). With no secrets it
// returns a nil *Signer and no error. The error names the secret's position,
// never its value.
func NewSigner(secrets []string) (*Signer, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	keys := make([][]byte, len(secrets))
	for i, sec := range secrets {
		key, err := parseKey(sec)
		if err != nil {
			return nil, fmt.Errorf("signing secret %d: %w", i, err)
		}
		keys[i] = key
	}
	return newSigner(keys), nil
}

func newSigner(keys [][]byte) *Signer {
	s := &Signer{keys: keys}
	s.pool.New = func() any { return newMACState(keys) }
	return s
}

// Sign returns the Webhook-Signature value for a delivery of body with
// Webhook-Id id and Webhook-Timestamp ts (whole unix seconds):
// "v1,<base64>" per secret, space-separated, standard base64 with padding.
func (s *Signer) Sign(id string, ts time.Time, body []byte) string {
	if s == nil || len(s.keys) == 0 {
		return ""
	}
	st := s.pool.Get().(*macState)
	st.prefix = strconv.AppendInt(append(append(st.prefix[:0], id...), '.'), ts.Unix(), 10)
	st.prefix = append(st.prefix, '.')
	st.sum(st.prefix, body)

	// A Builder grown to size makes the result the only allocation.
	var b strings.Builder
	var enc [44]byte // padded base64 of a SHA-256 digest
	b.Grow(len(st.sums) * (len("v1, ") + len(enc)))
	for i := range st.sums {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("v1,")
		base64.StdEncoding.Encode(enc[:], st.sums[i][:])
		b.Write(enc[:])
	}
	st.release()
	s.pool.Put(st)
	return b.String()
}

// SignRequest makes req pass a source whose verify block has this kind,
// header and secret, for "hooxrelay send --secret". now is the
// standard-webhooks timestamp. It sets:
//
//   - token: header to the secret ("Bearer <secret>" for Authorization), or
//     the query parameter token when header is "";
//   - hmac-sha256: header to "sha256=<hex HMAC of body>";
//   - standard-webhooks: webhook-id (kept if req already has one, else a
//     random "msg_" id), webhook-timestamp and webhook-signature;
//   - none: nothing.
func SignRequest(kind, header, secret string, req *http.Request, body []byte, now time.Time) error {
	if kind == KindNone {
		return nil
	}
	if secret == "" {
		return fmt.Errorf("sign request: kind %q needs a secret", kind)
	}
	switch kind {
	case KindToken:
		if header == "" {
			q := req.URL.Query()
			q.Set("token", secret)
			req.URL.RawQuery = q.Encode()
			return nil
		}
		if http.CanonicalHeaderKey(header) == "Authorization" {
			req.Header.Set(header, "Bearer "+secret)
		} else {
			req.Header.Set(header, secret)
		}
		return nil
	case KindHMACSHA256:
		if header == "" {
			return errors.New("sign request: kind hmac-sha256 needs the header name")
		}
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		req.Header.Set(header, "sha256="+hex.EncodeToString(m.Sum(nil)))
		return nil
	case KindStandardWebhooks:
		key, err := parseKey(secret)
		if err != nil {
			return fmt.Errorf("sign request: secret %w", err)
		}
		s := newSigner([][]byte{key})
		id := req.Header.Get(headerID)
		if strings.TrimSpace(id) == "" {
			id = "msg_" + rand.Text()
		}
		req.Header.Set(headerID, id)
		req.Header.Set(headerTimestamp, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(headerSignature, s.Sign(id, now, body))
		return nil
	}
	return fmt.Errorf("sign request: unknown verify kind %q", kind)
}
