package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse, Validate or Check panic,
// that Check agrees with the other two on whether a file is valid, and
// that every error they return is made of FieldErrors: the check command prints
// them one per line, and a stray error type would lose its location.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	examples, _ := filepath.Glob(filepath.Join("..", "deploy", "examples", "*.yaml"))
	for _, p := range append(seeds, examples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &a [*a]\n"))
	f.Add([]byte("targets: [{<<: {name: a}, retry: {<<: [{jitter: 0}]}}]\n"))
	f.Add([]byte("routes: [{match: {where: [{value: &x [*x, *x]}]}}]\n"))

	// Values under test come from the environment only through ${...};
	// a fixed one keeps runs reproducible.
	f.Setenv("HOOXTEST_FUZZ", "1")
	f.Fuzz(func(t *testing.T, data []byte) {
		checked, checkErr := Check(data, "fuzz.yaml")
		if (checked == nil) == (checkErr == nil) {
			t.Fatalf("Check(%q) = %v, %v: want a config or an error", data, checked, checkErr)
		}
		if checkErr != nil {
			checkFieldErrors(t, "Check", data, checkErr)
		}
		c, err := Parse(data, "fuzz.yaml")
		if err != nil {
			if c != nil {
				t.Fatalf("Parse(%q) returned a config along with error %v", data, err)
			}
			checkFieldErrors(t, "Parse", data, err)
			if checkErr == nil {
				t.Fatalf("Check(%q) passed what Parse refused: %v", data, err)
			}
			return
		}
		err = c.Validate()
		if err != nil {
			checkFieldErrors(t, "Validate", data, err)
		}
		if (err == nil) != (checkErr == nil) {
			t.Fatalf("Check(%q) error %v, but Parse and Validate say %v", data, checkErr, err)
		}
	})
}

func checkFieldErrors(t *testing.T, what string, data []byte, err error) {
	t.Helper()
	n := 0
	for range joined(err) {
		n++
	}
	if got := len(FieldErrors(err)); got != n || n == 0 {
		t.Fatalf("%s(%q) error %v: %d of its %d parts are FieldErrors", what, data, err, got, n)
	}
}

// joined yields the parts of an errors.Join error, or err itself.
func joined(err error) func(func(error) bool) {
	return func(yield func(error) bool) {
		if u, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range u.Unwrap() {
				if !yield(e) {
					return
				}
			}
			return
		}
		yield(err)
	}
}
