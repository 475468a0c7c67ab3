package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestParsePayloadValid(t *testing.T) {
	cases := []struct {
		name         string
		body         string
		task, status string
		key          string
	}{
		{"video_generate", `{"task":"video_generate","job_id":"run_0123","status":"completed","result":{"video_id":"video_ab","thumbnail_url":"https://cdn.example/t.jpg","cost":5,"created_at":"2024-01-15T10:30:00Z"}}`,
			"video_generate", "completed", "video_generate:run_0123:completed"},
		{"video_export failed", `{"task":"video_export","job_id":"run_9","status":"failed","error":{"code":"X","message":"m"}}`,
			"video_export", "failed", "video_export:run_9:failed"},
		{"avatar_create", `{"task":"avatar_create","avatar_id":"avtr_1","look_id":"look_1","status":"completed"}`,
			"avatar_create", "completed", "avatar_create:avtr_1:look_1:completed"},
		{"avatar_edit error (documented example)", `{"task":"avatar_edit","avatar_id":"avtr_abc","look_id":"look_edit_789","status":"error","error":{"code":"GENERATION_FAILED","message":"…"}}`,
			"avatar_edit", "error", "avatar_edit:avtr_abc:look_edit_789:error"},
		{"key order and whitespace do not matter for known tasks", " {\n\"status\" : \"completed\" ,\"job_id\":\"run_0123\",\t\"task\":\"video_generate\"}\n",
			"video_generate", "completed", "video_generate:run_0123:completed"},
		{"escapes are decoded in the key", `{"task":"video_generate","job_id":"run_\u00e9","status":"completed"}`,
			"video_generate", "completed", "video_generate:run_é:completed"},
		{"extra unknown fields are fine", `{"task":"video_generate","job_id":"j","status":"s","x":[1,{"y":null}]}`,
			"video_generate", "s", "video_generate:j:s"},
		{"avatar fields on a video task are ignored", `{"task":"video_generate","job_id":"j","avatar_id":7,"status":"s"}`,
			"video_generate", "s", "video_generate:j:s"},
		{"unknown task: key is the body hash", `{"task":"image_upscale","status":"done"}`,
			"image_upscale", "done", "image_upscale:sha256:" + sha256Hex(`{"task":"image_upscale","status":"done"}`)},
		{"unknown task: hash of the raw bytes, whitespace included", `{"task":"image_upscale", "status":"done"} `,
			"image_upscale", "done", "image_upscale:sha256:" + sha256Hex(`{"task":"image_upscale", "status":"done"} `)},
		{"unknown task without ids", `{"task":"Video_Generate","status":"completed"}`,
			"Video_Generate", "completed", "Video_Generate:sha256:" + sha256Hex(`{"task":"Video_Generate","status":"completed"}`)},
		{"an escaped surrogate pair is one character", `{"task":"video_generate","job_id":"run_\ud83c\udfac","status":"completed"}`,
			"video_generate", "completed", "video_generate:run_🎬:completed"},
		{"U+FFFD itself is valid, written or escaped", `{"task":"video_generate","job_id":"�\ufffd","status":"completed"}`,
			"video_generate", "completed", "video_generate:��:completed"},
		{"duplicate keys of fields not read are left to the targets", `{"task":"video_generate","job_id":"j","status":"s","result":1,"result":2}`,
			"video_generate", "s", "video_generate:j:s"},
		{"strings elsewhere may hold anything", "{\"task\":\"video_generate\",\"job_id\":\"j\",\"status\":\"s\",\"error\":{\"message\":\"a\\r\\n\\ud800\xff\"}}",
			"video_generate", "s", "video_generate:j:s"},
		{"a value of MaxFieldBytes", `{"task":"video_generate","job_id":"` + strings.Repeat("j", MaxFieldBytes) + `","status":"s"}`,
			"video_generate", "s", "video_generate:" + strings.Repeat("j", MaxFieldBytes) + ":s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePayload([]byte(tc.body))
			if err != nil {
				t.Fatalf("ParsePayload(%q) error %v, want a payload", tc.body, err)
			}
			if p.Task != tc.task || p.Status != tc.status || p.DedupKey != tc.key {
				t.Errorf("ParsePayload(%q) = task %q status %q key %q\nwant task %q status %q key %q", tc.body, p.Task, p.Status, p.DedupKey, tc.task, tc.status, tc.key)
			}
			if p.Doc == nil || p.Doc["task"] != tc.task {
				t.Errorf("ParsePayload(%q).Doc = %v, want the decoded body", tc.body, p.Doc)
			}
		})
	}
}

func TestParsePayloadInvalid(t *testing.T) {
	cases := []struct {
		name, body string
		field      string
		message    string // a part of the message
	}{
		{"empty", ``, "", "JSON object"},
		{"not JSON", `task=video_generate`, "", "JSON object"},
		{"truncated", `{"task":"video_generate"`, "", "JSON object"},
		{"trailing data", `{"task":"x","status":"y"} {}`, "", "JSON object"},
		{"array", `[]`, "", "array"},
		{"string", `"x"`, "", "string"},
		{"number", `42`, "", "number"},
		{"null", `null`, "", "null"},
		{"missing task", `{"status":"completed"}`, "task", "required"},
		{"empty task", `{"task":"","status":"completed"}`, "task", "empty"},
		{"task a number", `{"task":1,"status":"completed"}`, "task", "number"},
		{"task an object", `{"task":{},"status":"completed"}`, "task", "object"},
		{"task null", `{"task":null,"status":"completed"}`, "task", "null"},
		{"task a bool", `{"task":true,"status":"completed"}`, "task", "boolean"},
		{"task an array", `{"task":["video_generate"],"status":"completed"}`, "task", "array"},
		{"video missing job_id", `{"task":"video_generate","status":"completed"}`, "job_id", "required"},
		{"video empty job_id", `{"task":"video_export","job_id":"","status":"completed"}`, "job_id", "empty"},
		{"video job_id a number", `{"task":"video_export","job_id":5,"status":"completed"}`, "job_id", "number"},
		{"avatar missing avatar_id", `{"task":"avatar_create","look_id":"l","status":"completed"}`, "avatar_id", "required"},
		{"avatar missing look_id", `{"task":"avatar_create","avatar_id":"a","status":"completed"}`, "look_id", "required"},
		{"avatar look_id null", `{"task":"avatar_edit","avatar_id":"a","look_id":null,"status":"completed"}`, "look_id", "null"},
		{"missing status", `{"task":"video_generate","job_id":"j"}`, "status", "required"},
		{"status a number", `{"task":"video_generate","job_id":"j","status":200}`, "status", "number"},
		{"status empty", `{"task":"avatar_edit","avatar_id":"a","look_id":"l","status":""}`, "status", "empty"},
		{"unknown task missing status", `{"task":"image_upscale"}`, "status", "required"},
		{"unknown task status an object", `{"task":"image_upscale","status":{}}`, "status", "object"},
		// What goes into a header, a key or an index must be read alike by
		// every reader and be sendable.
		{"line break in task", `{"task":"evil\r\nX-Injected: 1","status":"s"}`, "task", "control characters, found 0x0d"},
		{"NUL in job_id", `{"task":"video_generate","job_id":"a\u0000b","status":"s"}`, "job_id", "control characters"},
		{"tab in status", `{"task":"video_generate","job_id":"j","status":"a\tb"}`, "status", "control characters"},
		{"DEL in look_id", "{\"task\":\"avatar_edit\",\"avatar_id\":\"a\",\"look_id\":\"l\x7f\",\"status\":\"s\"}", "look_id", "0x7f"},
		{"job_id too long", `{"task":"video_generate","job_id":"` + strings.Repeat("j", MaxFieldBytes+1) + `","status":"s"}`, "job_id", "over the limit of 1024"},
		{"task too long", `{"task":"` + strings.Repeat("t", MaxFieldBytes+1) + `","status":"s"}`, "task", "over the limit"},
		{"job_id not UTF-8", "{\"task\":\"video_generate\",\"job_id\":\"z\xff\",\"status\":\"s\"}", "job_id", "UTF-8"},
		{"status not UTF-8", "{\"task\":\"image_upscale\",\"status\":\"\xc3(\"}", "status", "UTF-8"},
		{"lone high surrogate", `{"task":"video_generate","job_id":"\ud800","status":"s"}`, "job_id", "lone surrogate escape \\ud800"},
		{"lone low surrogate", `{"task":"video_generate","job_id":"\udfff","status":"s"}`, "job_id", "lone surrogate escape \\udfff"},
		{"high surrogate before a letter", `{"task":"avatar_create","avatar_id":"\uD800\u0041","look_id":"l","status":"s"}`, "avatar_id", "lone surrogate"},
		{"high surrogate at the end", `{"task":"video_generate","job_id":"j","status":"ok\ud83c"}`, "status", "lone surrogate"},
		{"task twice", `{"task":"x","task":"video_generate","job_id":"j","status":"s"}`, "task", "appears 2 times"},
		{"task twice, once escaped", `{"task":"video_generate","job_id":"j","\u0074ask":"x","status":"s"}`, "task", "appears 2 times"},
		{"job_id twice", `{"task":"video_generate","job_id":"a","status":"s","job_id":"b"}`, "job_id", "appears 2 times"},
		{"status three times", `{"task":"image_upscale","status":"a","status":"b","status":{"c":1}}`, "status", "must be a string"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePayload([]byte(tc.body))
			var pe *PayloadError
			if !errors.As(err, &pe) {
				t.Fatalf("ParsePayload(%q) = %v, %v; want a *PayloadError", tc.body, p, err)
			}
			if p != nil {
				t.Errorf("ParsePayload(%q) returned a payload with its error", tc.body)
			}
			if pe.Field != tc.field || !strings.Contains(pe.Message, tc.message) {
				t.Errorf("ParsePayload(%q) error field %q message %q, want field %q and a message mentioning %q", tc.body, pe.Field, pe.Message, tc.field, tc.message)
			}
			if strings.Contains(pe.Message, "map[string]interface") || strings.Contains(pe.Message, "Go value") {
				t.Errorf("ParsePayload(%q) message %q shows Go types to the sender", tc.body, pe.Message)
			}
			if !strings.HasPrefix(err.Error(), "invalid payload: ") || (tc.field != "" && !strings.Contains(err.Error(), tc.field+": ")) {
				t.Errorf("error text %q, want \"invalid payload: [field: ]message\"", err.Error())
			}
		})
	}
}

// Ids that a JSON decoder would turn into the same string are refused, so
// two different webhooks never share a dedup key.
func TestParsePayloadNoCollisions(t *testing.T) {
	for _, pair := range [][2]string{
		{"z\xff", "z\xfe"},
		{`\ud800`, `\udfff`},
		{`\ud800`, "\xed\xa0\x80"}, // the surrogate's UTF-8-like bytes
	} {
		keys := map[string]bool{}
		for _, id := range pair {
			p, err := ParsePayload([]byte(`{"task":"video_generate","job_id":"` + id + `","status":"completed"}`))
			if err == nil {
				keys[p.DedupKey] = true
			}
		}
		if len(keys) == 1 {
			t.Errorf("job ids %q and %q both accepted with the same dedup key", pair[0], pair[1])
		}
	}
}

func TestKnownTask(t *testing.T) {
	for task, want := range map[string]bool{
		"video_generate": true, "video_export": true, "avatar_create": true, "avatar_edit": true,
		"": false, "image_upscale": false, "VIDEO_GENERATE": false, "video_generate ": false,
	} {
		if got := KnownTask(task); got != want {
			t.Errorf("KnownTask(%q) = %v, want %v", task, got, want)
		}
	}
}

// The accepted answer, appended by hand on the hot path, is what
// encoding/json makes of it, escapes included.
func TestAppendAcceptedIsJSON(t *testing.T) {
	for _, targets := range [][]string{nil, {"a"}, {"media", "a<b>&\"c\\", "é", "tab\there"}} {
		want := []string{}
		if targets != nil {
			want = targets
		}
		js, err := json.Marshal(answer{Status: "accepted", EventID: "evt_01H", Targets: &want})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendAccepted(nil, "evt_01H", targets)); got != string(js)+"\n" {
			t.Errorf("appendAccepted(%q) = %s, want %s", targets, got, js)
		}
	}
}

// The ids of a known task are kept apart for the store's search indexes;
// an unknown task's are not read.
func TestParsePayloadIDs(t *testing.T) {
	for _, tc := range []struct{ body, job, avatar, look string }{
		{`{"task":"video_export","job_id":"run_9","status":"failed"}`, "run_9", "", ""},
		{`{"task":"avatar_create","avatar_id":"avtr_1","look_id":"look_1","status":"completed"}`, "", "avtr_1", "look_1"},
		{`{"task":"video_generate","job_id":"j","avatar_id":"a","status":"s"}`, "j", "", ""},
		{`{"task":"image_upscale","job_id":"j","status":"done"}`, "", "", ""},
	} {
		p, err := ParsePayload([]byte(tc.body))
		if err != nil || p.JobID != tc.job || p.AvatarID != tc.avatar || p.LookID != tc.look {
			t.Errorf("ParsePayload(%s) = ids %q %q %q, %v; want %q %q %q", tc.body, p.JobID, p.AvatarID, p.LookID, err, tc.job, tc.avatar, tc.look)
		}
	}
}
