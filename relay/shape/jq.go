package shape

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/itchyny/gojq"
)

// RunLimit bounds one run of a body program: a program still running
// after it fails, so that no payload can hold a target's deliveries up.
const RunLimit = 50 * time.Millisecond

// impure are the jq functions and variables that reach outside the
// payload: the process's environment, input streams, the clock and time
// zone, stderr, or the process's exit. A body must depend on the payload
// alone, so that a dry run shows what a delivery sends.
var impure = map[string]string{
	"$ENV":              "reads the environment",
	"env":               "reads the environment",
	"input":             "reads further inputs",
	"inputs":            "reads further inputs",
	"input_filename":    "reads the input's file name",
	"input_line_number": "reads the input's line",
	"debug":             "writes to stderr",
	"stderr":            "writes to stderr",
	"halt":              "stops the process",
	"halt_error":        "stops the process",
	"now":               "reads the clock",
	"localtime":         "reads the time zone",
	"strflocaltime":     "reads the time zone",
	"get_search_list":   "reads the module search path",
	"input_line":        "reads further inputs",
}

// program is a compiled jq body program.
type program struct {
	code *gojq.Code
}

// compileProgram parses and compiles src, refusing what is not pure.
func compileProgram(src string) (*program, error) {
	q, err := gojq.Parse(src)
	if err != nil {
		var pe *gojq.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("jq: %v (after %d bytes of the program)", err, pe.Offset)
		}
		return nil, fmt.Errorf("jq: %w", err)
	}
	if len(q.Imports) > 0 {
		return nil, fmt.Errorf("jq: import and include are not allowed: a body program stands alone")
	}
	if name, why := findImpure(reflect.ValueOf(q)); name != "" {
		return nil, fmt.Errorf("jq: %s is not allowed: it %s, and a body program may read only the payload", name, why)
	}
	code, err := gojq.Compile(q)
	if err != nil {
		return nil, fmt.Errorf("jq: %w", err)
	}
	return &program{code: code}, nil
}

var (
	funcType   = reflect.TypeFor[gojq.Func]()
	objKeyType = reflect.TypeFor[gojq.ObjectKeyVal]() // {$ENV} is {ENV: $ENV}
)

// findImpure walks a parsed program for a call of an impure function or a
// use of $ENV, and returns its name and why it is refused.
func findImpure(v reflect.Value) (string, string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "", ""
		}
		return findImpure(v.Elem())
	case reflect.Slice:
		for i := range v.Len() {
			if n, why := findImpure(v.Index(i)); n != "" {
				return n, why
			}
		}
	case reflect.Struct:
		if t := v.Type(); t == funcType || t == objKeyType {
			name := v.Field(0).String() // Name, or Key
			if why, bad := impure[name]; bad {
				return name, why
			}
		}
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				continue
			}
			if n, why := findImpure(v.Field(i)); n != "" {
				return n, why
			}
		}
	}
	return "", ""
}

// StepBudget bounds the work of one run in evaluation steps, so that a
// program too slow for any payload fails the same way on an idle machine
// and on a busy one. A body program takes tens of steps; a million is
// about RunLimit of work on a small, busy VM.
const StepBudget = 1_000_000

// maxRuns is how many times a run that hit RunLimit before its step
// budget is made: its time went to a busy machine (or to one long builtin),
// and a delivery must not die of the machine being busy for 50 ms.
const maxRuns = 3

var errBudget = fmt.Errorf("jq: the body program ran past its budget of %d steps (about %s of work)", StepBudget, RunLimit)

// budget is a run's context: gojq asks Done before every step, which is
// what counts the steps, and every 1024 steps the clock is read. Only the
// run's goroutine uses it. It carries the caller's values, not its end:
// a run is bounded anyway.
type budget struct {
	context.Context
	left  int
	start time.Time
	late  bool // RunLimit passed within the step budget
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (b *budget) Done() <-chan struct{} {
	b.left--
	switch {
	case b.left < 0:
		return closed
	case b.left&1023 == 0 && time.Since(b.start) > RunLimit:
		b.late = true
		return closed
	}
	return nil
}

func (b *budget) Err() error {
	switch {
	case b.left < 0:
		return errBudget
	case b.late:
		return context.DeadlineExceeded
	}
	return nil
}

func (b *budget) Deadline() (time.Time, bool) { return b.start.Add(RunLimit), true }

// run runs p over doc and returns its one output. No output, several
// outputs, an error, a run past StepBudget and runs past RunLimit are
// errors.
func (p *program) run(ctx context.Context, doc any) (any, error) {
	for try := 1; ; try++ {
		v, err, stalled := p.runOnce(ctx, doc)
		if !stalled || try == maxRuns {
			return v, err
		}
	}
}

// runOnce is one run; stalled reports that it hit RunLimit within its
// step budget.
func (p *program) runOnce(ctx context.Context, doc any) (_ any, _ error, stalled bool) {
	b := &budget{Context: ctx, left: StepBudget, start: time.Now()}
	iter := p.code.RunWithContext(b, doc)
	v, ok := iter.Next()
	if !ok {
		return nil, errors.New("jq: the body program gave no output; it must give exactly one, the body"), false
	}
	if err, isErr := v.(error); isErr {
		return nil, jqError(err), b.late
	}
	if w, more := iter.Next(); more {
		if err, isErr := w.(error); isErr {
			return nil, jqError(err), b.late
		}
		return nil, errors.New("jq: the body program gave more than one output; it must give exactly one, the body (wrap several in [...] or {...})"), false
	}
	return v, nil, false
}

func jqError(err error) error {
	switch {
	case errors.Is(err, errBudget):
		return errBudget
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("jq: the body program ran past %s, %d times", RunLimit, maxRuns)
	}
	return fmt.Errorf("jq: %w", err)
}
