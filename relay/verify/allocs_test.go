// The race detector makes sync.Pool drop items at random, so allocation
// counts only mean something without it.

//go:build !race

package verify

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestVerifyNoAllocs pins the claim that checking a request allocates
// nothing, pass or fail, so that a flood of forgeries costs only CPU.
func TestVerifyNoAllocs(t *testing.T) {
	body := []byte(`{"task":"video_generate"}`)
	ts := unix(now)
	for _, tc := range []struct {
		name string
		cfg  Settings
		h    http.Header
	}{
		{"token", Settings{Kind: "token", Header: "Authorization", Secrets: []string{tokOld, tokNew}}, hdr("Authorization", "Bearer "+tokNew)},
		{"token mismatch", Settings{Kind: "token", Header: "X-T", Secrets: []string{tokOld}}, hdr("X-T", strings.Repeat("x", 100))},
		{"hmac", Settings{Kind: "hmac-sha256", Header: "X-Sig", Secrets: []string{hmacOld, hmacNew}}, hdr("X-Sig", "sha256="+hmacHex(hmacNew, string(body)))},
		{"hmac base64 mismatch", Settings{Kind: "hmac-sha256", Header: "X-Sig", Secrets: []string{hmacOld}}, hdr("X-Sig", hmacB64(base64.StdEncoding, hmacNew, string(body)))},
		{"standard-webhooks", Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}}, swHeaders("msg_1", ts, "v1,AAAA "+swSig(swKeyNew, "msg_1", ts, string(body)))},
		{"standard-webhooks stale", Settings{Kind: "standard-webhooks", Secrets: []string{swOld}}, swHeaders("msg_1", "1", "v1,AAAA")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := mustNew(t, tc.cfg)
			v.Verify(tc.h, nil, body, now) // warm the pool
			if n := testing.AllocsPerRun(100, func() { v.Verify(tc.h, nil, body, now) }); n != 0 {
				t.Errorf("Verify allocates %v times per call, want 0", n)
			}
		})
	}
}
