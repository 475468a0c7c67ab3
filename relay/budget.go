package relay

import (
	"errors"
	"io"
	"sync/atomic"
)

// bodyBudget bounds the bytes of webhook bodies being read, and held until
// answered, at once (server.max_buffered_body_bytes): many slow uploads
// must not grow memory without bound. It is shared by the ingresses that
// reloads build in turn, and safe for concurrent use.
type bodyBudget struct {
	max  atomic.Int64
	used atomic.Int64
}

// defaultBodyBudget is used when the config leaves the budget at zero
// (configs built in code; Validate refuses zero).
const defaultBodyBudget = 64 << 20

func newBodyBudget(max int64) *bodyBudget {
	b := new(bodyBudget)
	b.setMax(max)
	return b
}

func (b *bodyBudget) setMax(max int64) {
	if max <= 0 {
		max = defaultBodyBudget
	}
	b.max.Store(max)
}

// reserve takes n bytes of the budget, or reports false when they would
// take it past its maximum.
func (b *bodyBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.max.Load() {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

func (b *bodyBudget) release(n int64) { b.used.Add(-n) }

// errOverBudget is what a budgetReader returns when the budget is spent.
var errOverBudget = errors.New("server.max_buffered_body_bytes reached: too many bodies are being read at once")

// budgetChunk is how much a body of unknown length reserves at a time.
const budgetChunk = 32 << 10

// budgetReader reads a body whose length is not declared (chunked),
// reserving budget before each chunk it reads, never more than limit bytes
// in all. The caller releases reserved.
type budgetReader struct {
	r        io.Reader
	b        *bodyBudget
	limit    int64 // max_body_bytes + 1: enough to tell an oversized body
	reserved int64
	read     int64
}

func (br *budgetReader) Read(p []byte) (int, error) {
	if br.read == br.reserved {
		n := min(budgetChunk, br.limit-br.reserved)
		if n <= 0 {
			return 0, io.EOF
		}
		if !br.b.reserve(n) {
			return 0, errOverBudget
		}
		br.reserved += n
	}
	p = p[:min(int64(len(p)), br.reserved-br.read)]
	n, err := br.r.Read(p)
	br.read += int64(n)
	return n, err
}
