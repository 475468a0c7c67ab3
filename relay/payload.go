package relay

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// Payload is a validated Hoox webhook body.
type Payload struct {
	Task     string
	Status   string
	DedupKey string
	// JobID, AvatarID and LookID are the known task's id fields, "" for
	// those it has not: the store indexes them for search.
	JobID, AvatarID, LookID string
	Doc                     map[string]any // the decoded body, for routing conditions
}

// PayloadError says why a body is not a valid Hoox webhook. Field names the
// offending field, or is empty when the body as a whole is wrong.
type PayloadError struct {
	Field   string
	Message string
}

func (e *PayloadError) Error() string {
	if e.Field == "" {
		return "invalid payload: " + e.Message
	}
	return fmt.Sprintf("invalid payload: %s: %s", e.Field, e.Message)
}

// taskIDs are the id fields that make up the dedup key of each known task,
// in key order (docs/http.md).
var taskIDs = map[string][]field{
	"video_generate": {fieldJobID},
	"video_export":   {fieldJobID},
	"avatar_create":  {fieldAvatarID, fieldLookID},
	"avatar_edit":    {fieldAvatarID, fieldLookID},
}

// MaxFieldBytes bounds task, status and the id fields. They go into the
// dedup key, a header (task) and the store's indexes; Hoox's values are a
// few dozen bytes, so a longer one is refused (400) rather than stored.
const MaxFieldBytes = 1024

// KnownTask reports whether task is one of the task types Hoox documents.
func KnownTask(task string) bool { _, ok := taskIDs[task]; return ok }

// ParsePayload validates body as docs/http.md describes and derives its dedup key.
// Unknown tasks are valid as long as task and status are present: Hoox may
// add task types, and refusing them would make Hoox discard them.
//
// The fields it reads (task, status and the task's ids) must also be
// strings that every reader decodes alike, since the dedup key and routing
// use them while targets get the raw body: valid UTF-8 without escaped lone
// surrogates (a decoder replaces those with U+FFFD, so different ids would
// share a key), present once (duplicate keys are read differently by
// different parsers), free of control characters (task goes into a
// header) and at most MaxFieldBytes long.
func ParsePayload(body []byte) (*Payload, error) { return parsePayload(body, true) }

// parsePayload is ParsePayload; without withDoc it leaves Doc nil and, for
// a valid JSON object, reads the fields from the raw body instead of
// decoding all of it into a map (the ingress needs Doc only when a route
// has conditions). Its answers are ParsePayload's.
func parsePayload(body []byte, withDoc bool) (*Payload, error) {
	var fr fields
	if !withDoc && json.Valid(body) {
		if i := skipSpace(body, 0); i < len(body) && body[i] == '{' {
			fr.body = body
		}
	}
	if fr.body == nil {
		if err := json.Unmarshal(body, &fr.doc); err != nil {
			return nil, &PayloadError{Message: "body must be a JSON object: " + jsonProblem(err)}
		}
		if fr.doc == nil {
			return nil, &PayloadError{Message: "body must be a JSON object, got null"}
		}
	}
	fr.raw = scanFields(body)
	task, err := fr.read(fieldTask)
	if err != nil {
		return nil, err
	}
	p := &Payload{Task: task}
	if withDoc {
		p.Doc = fr.doc
	}
	ids, known := taskIDs[task]
	key := make([]byte, 0, 96)
	key = append(key, task...)
	for _, f := range ids {
		v, err := fr.read(f)
		if err != nil {
			return nil, err
		}
		key = append(key, ':')
		key = append(key, v...)
		switch f {
		case fieldJobID:
			p.JobID = v
		case fieldAvatarID:
			p.AvatarID = v
		case fieldLookID:
			p.LookID = v
		}
	}
	if p.Status, err = fr.read(fieldStatus); err != nil {
		return nil, err
	}
	if known {
		key = append(key, ':')
		key = append(key, p.Status...)
	} else {
		sum := sha256.Sum256(body)
		key = append(key, ":sha256:"...)
		key = hex.AppendEncode(key, sum[:])
	}
	p.DedupKey = string(key)
	return p, nil
}

// fields reads the payload's fields: from doc, the decoded body, or when
// doc is nil, from body through raw.
type fields struct {
	doc  map[string]any
	body []byte
	raw  rawFields
}

// read returns the field f, a non-empty string that its raw form (how it
// appears in the body) and its content allow.
func (fr *fields) read(f field) (string, error) {
	name := fieldNames[f]
	var s string
	var err error
	if fr.body == nil {
		s, err = requiredString(fr.doc, name)
	} else {
		s, err = fr.rawString(f)
	}
	if err != nil {
		return "", err
	}
	raw := &fr.raw
	if n := raw[f].count; n > 1 {
		return "", &PayloadError{Field: name, Message: fmt.Sprintf("appears %d times in the object; send it once", n)}
	}
	if why := raw[f].bad; why != "" {
		return "", &PayloadError{Field: name, Message: why}
	}
	if len(s) > MaxFieldBytes {
		return "", &PayloadError{Field: name, Message: fmt.Sprintf("is %d bytes long, over the limit of %d", len(s), MaxFieldBytes)}
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return "", &PayloadError{Field: name, Message: fmt.Sprintf("must not contain control characters, found %#02x at byte %d", c, i)}
		}
	}
	return s, nil
}

func requiredString(doc map[string]any, field string) (string, error) {
	v, ok := doc[field]
	if !ok {
		return "", &PayloadError{Field: field, Message: "is required"}
	}
	s, ok := v.(string)
	if !ok {
		return "", &PayloadError{Field: field, Message: fmt.Sprintf("must be a string, got %s", jsonType(v))}
	}
	if s == "" {
		return "", &PayloadError{Field: field, Message: "must not be empty"}
	}
	return s, nil
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case float64, json.Number:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// jsonProblem turns a decoding error into a short message without Go type
// names, which mean nothing to the sender.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s at byte %d", se.Error(), se.Offset)
	case errors.As(err, &te):
		return "got a JSON " + te.Value
	}
	return err.Error()
}
