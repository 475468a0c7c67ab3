package verify

import (
	"net/http"
	"strings"
	"testing"
)

// BenchmarkVerify shows what a signature check adds to an ingress request:
// a 1 KiB body, two secrets (a rotation in progress), the valid signature
// made with the second one, so that every secret is tried.
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"task":"video_generate","job_id":"j1","status":"completed","pad":"` + strings.Repeat("x", 1024-68) + `"}`)
	ts := unix(now)
	for _, bc := range []struct {
		name string
		cfg  Settings
		h    http.Header
	}{
		{"none", Settings{Kind: "none"}, http.Header{}},
		{"token", Settings{Kind: "token", Header: "Authorization", Secrets: []string{tokOld, tokNew}}, hdr("Authorization", "Bearer "+tokNew)},
		{"hmac-sha256", Settings{Kind: "hmac-sha256", Header: "X-Sig", Secrets: []string{hmacOld, hmacNew}}, hdr("X-Sig", "sha256="+hmacHex(hmacNew, string(body)))},
		{"standard-webhooks", Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}}, swHeaders("msg_2bWk9rQd1YtEvZ3x", ts, swSig(swKeyNew, "msg_2bWk9rQd1YtEvZ3x", ts, string(body)))},
		{"standard-webhooks-stale", Settings{Kind: "standard-webhooks", Secrets: []string{swOld, swNew}}, swHeaders("msg_1", "1", "v1,AAAA")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			v := mustNew(b, bc.cfg)
			if err := v.Verify(bc.h, nil, body, now); err != nil && !strings.HasSuffix(bc.name, "stale") {
				b.Fatalf("Verify = %v, want nil", err)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				v.Verify(bc.h, nil, body, now)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	body := []byte(strings.Repeat("x", 1024))
	s, err := NewSigner([]string{swOld, swNew})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		s.Sign("evt_01JZ8Q3ABCDEFGHJKMNPQRSTVW", now, body)
	}
}
