package relay

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParsePayload checks the parser's contract on any input: it never
// panics; a success has a task and a status and a dedup key built exactly as
// docs/http.md says; a failure is a *PayloadError naming a known field or none.
// Seeds are in testdata/fuzz/FuzzParsePayload and below.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{
		`{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","cost":5}}`,
		`{"task":"video_export","job_id":"a:b","status":"failed","error":{"code":"X"}}`,
		`{"task":"avatar_create","avatar_id":"avtr_abc","look_id":"look_1","status":"completed"}`,
		`{"task":"avatar_edit","avatar_id":"avtr_abc","look_id":"look_edit_789","status":"error","error":{"code":"GENERATION_FAILED","message":"…"}}`,
		`{"task":"image_upscale","status":"done"}`,
		`{"task":"video_generate","status":"completed"}`,
		`{"task":"avatar_edit","avatar_id":"a","look_id":7,"status":"x"}`,
		`{"task":"","status":"x"}`,
		`{"task":1}`,
		`{"task":"video_generate","job_id":"\u0000","status":"\ud800"}`,
		`{"task":"x","task":"video_generate","job_id":"j","status":"s"}`,
		"{\"task\":\"video_generate\",\"job_id\":\"\xff\xfe\",\"status\":\"s\"}",
		`[]`, `null`, `""`, `{}`, `{`, ``, `   `, `{"task":"x","status":"y"}garbage`,
		strings.Repeat(`[`, 20000),
		`{"a":` + strings.Repeat(`{"a":`, 200) + `1` + strings.Repeat(`}`, 201),
		`{"task":"video_generate","job_id":"\ud83c\udfac","status":"completed"}`,
		`{"task":"video_generate","job_id":"j","\u0074ask":"x","status":"s"}`,
		`{"task":"video_generate","job_id":"` + strings.Repeat("j", MaxFieldBytes+1) + `","status":"s"}`,
		`{"task":"image_upscale","status":"s","x":{"task":"a","task":"b"},"y":["status","status"]}`,
	} {
		f.Add([]byte(s))
	}
	fields := map[string]bool{"": true, "task": true, "status": true, "job_id": true, "avatar_id": true, "look_id": true}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParsePayload(body)
		// The ingress's parse without Doc answers alike.
		q, qerr := parsePayload(body, false)
		if fmt.Sprint(err) != fmt.Sprint(qerr) || (p == nil) != (q == nil) || (p != nil && (q.Doc != nil || [6]string{q.Task, q.Status, q.DedupKey, q.JobID, q.AvatarID, q.LookID} != [6]string{p.Task, p.Status, p.DedupKey, p.JobID, p.AvatarID, p.LookID})) {
			t.Fatalf("parsePayload(%q, false) = %+v, %v; ParsePayload = %+v, %v", body, q, qerr, p, err)
		}
		if err != nil {
			var pe *PayloadError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePayload(%q) error %T %v, want a *PayloadError", body, err, err)
			}
			if p != nil {
				t.Fatalf("ParsePayload(%q) returned a payload along with error %v", body, err)
			}
			if !fields[pe.Field] || pe.Message == "" {
				t.Fatalf("ParsePayload(%q) error field %q message %q: want a known field (or none) and a message", body, pe.Field, pe.Message)
			}
			return
		}
		if p == nil {
			t.Fatalf("ParsePayload(%q) returned nil, nil", body)
		}
		if !json.Valid(body) {
			t.Fatalf("ParsePayload accepted %q, which is not valid JSON", body)
		}
		if p.Task == "" || p.Status == "" {
			t.Fatalf("ParsePayload(%q) accepted task %q status %q; both must be non-empty", body, p.Task, p.Status)
		}
		// What was read is sendable in a header and read alike by every
		// decoder: one occurrence, UTF-8, no control characters, bounded.
		counts := topLevelCounts(t, body)
		for _, name := range []string{"task", "status"} {
			v := p.Doc[name].(string)
			if counts[name] != 1 || !utf8.ValidString(v) || len(v) > MaxFieldBytes || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("ParsePayload(%q) accepted %s %q (%d times in the object)", body, name, v, counts[name])
			}
		}
		if p.Doc["task"] != p.Task || p.Doc["status"] != p.Status {
			t.Fatalf("ParsePayload(%q): Doc task %v status %v differ from Task %q Status %q", body, p.Doc["task"], p.Doc["status"], p.Task, p.Status)
		}
		if !strings.HasPrefix(p.DedupKey, p.Task+":") {
			t.Fatalf("ParsePayload(%q) dedup key %q does not start with %q", body, p.DedupKey, p.Task+":")
		}
		var want string
		switch p.Task {
		case "video_generate", "video_export":
			id, _ := p.Doc["job_id"].(string)
			if id == "" {
				t.Fatalf("ParsePayload(%q) accepted a video task without a job_id string", body)
			}
			want = p.Task + ":" + id + ":" + p.Status
		case "avatar_create", "avatar_edit":
			avatar, _ := p.Doc["avatar_id"].(string)
			look, _ := p.Doc["look_id"].(string)
			if avatar == "" || look == "" {
				t.Fatalf("ParsePayload(%q) accepted an avatar task without avatar_id and look_id strings", body)
			}
			want = p.Task + ":" + avatar + ":" + look + ":" + p.Status
		default:
			if KnownTask(p.Task) {
				t.Fatalf("KnownTask(%q) is true but the fuzz test does not know its ids", p.Task)
			}
			sum := sha256.Sum256(body)
			want = p.Task + ":sha256:" + hex.EncodeToString(sum[:])
		}
		if p.DedupKey != want {
			t.Fatalf("ParsePayload(%q) dedup key %q, want %q", body, p.DedupKey, want)
		}
		for _, f := range taskIDs[p.Task] {
			if name := fieldNames[f]; counts[name] != 1 {
				t.Fatalf("ParsePayload(%q) accepted %s written %d times", body, name, counts[name])
			}
		}
		if again, err := ParsePayload(body); err != nil || again.DedupKey != p.DedupKey {
			t.Fatalf("ParsePayload(%q) is not deterministic: %v %v", body, again, err)
		}
	})
}

// topLevelCounts counts the top-level keys of a JSON object with
// encoding/json's tokenizer, as a reference for scanFields.
func topLevelCounts(t *testing.T, body []byte) map[string]int {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("accepted body %q does not start an object: %v %v", body, tok, err)
	}
	counts := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("reference tokenizer on %q: %v", body, err)
		}
		counts[tok.(string)]++
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatalf("reference tokenizer on %q: %v", body, err)
		}
	}
	return counts
}
