package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		e    FieldError
		want string
	}{
		{FieldError{"hooxrelay.yaml", 14, "targets[2].url", `must be https, got "http://x"`}, `hooxrelay.yaml:14: targets[2].url: must be https, got "http://x"`},
		{FieldError{"hooxrelay.yaml", 0, "sources", "at least one"}, "hooxrelay.yaml: sources: at least one"},
		{FieldError{"", 3, "server.listen", "bad"}, "line 3: server.listen: bad"},
		{FieldError{"", 0, "server.listen", "bad"}, "server.listen: bad"},
		{FieldError{"f.yaml", 2, "", "invalid YAML: x"}, "f.yaml:2: invalid YAML: x"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestFieldErrors(t *testing.T) {
	a := &FieldError{Path: "a", Msg: "x"}
	b := &FieldError{Path: "b", Msg: "y"}
	other := errors.New("other")
	err := errors.Join(a, wrap(errors.Join(b, other)))
	if got := FieldErrors(err); !reflect.DeepEqual(got, []*FieldError{a, b}) {
		t.Errorf("FieldErrors(%v) = %v, want [a b]", err, got)
	}
	if got := FieldErrors(nil); got != nil {
		t.Errorf("FieldErrors(nil) = %v, want nil", got)
	}
}

type wrapped struct{ err error }

func (w wrapped) Error() string { return "ctx: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrap(err error) error { return wrapped{err} }

func TestDefault(t *testing.T) {
	c := Default()
	if c.Sources != nil || c.Targets != nil || c.Routes != nil {
		t.Errorf("Default() has sources, targets or routes: %+v", c)
	}
	// Default must stay valid once a source and a target are added, or
	// every minimal config would fail.
	c.Sources = []Source{DefaultSource()}
	c.Sources[0].Name, c.Sources[0].Path = "hoox", "/hooks/hoox"
	c.Targets = []Target{DefaultTarget()}
	c.Targets[0].Name, c.Targets[0].URL = "t", "https://t.internal/"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of Default() plus one source and target = %v, want nil", err)
	}
	// Each call returns a fresh value: a caller may change it.
	Default().Server.Listen = "changed"
	if got := Default().Server.Listen; got != ":8080" {
		t.Errorf("Default().Server.Listen = %q after changing another Default(), want \":8080\"", got)
	}
}

func TestTarget(t *testing.T) {
	c := parseFile(t, "defaults.yaml")
	got, ok := c.Target("partial")
	if !ok || got.Name != "partial" || got.Retry.MaxAttempts != 3 {
		t.Errorf("Target(\"partial\") = %+v, %v; want the target named partial", got, ok)
	}
	if got, ok := c.Target("nope"); ok {
		t.Errorf("Target(\"nope\") = %+v, true; want false", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", okAll)
	c, err := Load(good)
	if err != nil || c == nil || c.File != good || len(c.Targets) != 1 {
		t.Errorf("Load(%s) = %+v, %v; want one target and File set", good, c, err)
	}

	missing := filepath.Join(dir, "missing.yaml")
	if c, err := Load(missing); c != nil || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(%s) = %v, %v; want nil and an error wrapping fs.ErrNotExist", missing, c, err)
	}

	bad := write("bad.yaml", "server: {listen: x}\n"+okAll)
	c, err = Load(bad)
	want := bad + `:1: server.listen: must be host:port`
	if c != nil || err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load(%s) = %v, %v; want nil and %q", bad, c, err, want)
	}

	typo := write("typo.yaml", "servr: {}\n"+okAll)
	c, err = Load(typo)
	want = typo + `:1: servr: unknown key; did you mean "server"?`
	if c != nil || err == nil || err.Error() != want {
		t.Errorf("Load(%s) = %v, %v; want nil and %q", typo, c, err, want)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	c := parseFile(t, "full.yaml")
	out, err := yaml.Marshal(c)
	if err != nil {
		t.Fatalf("yaml.Marshal(full.yaml config) error = %v", err)
	}
	if !strings.Contains(string(out), "read_header_timeout: 2s") || !strings.Contains(string(out), "signing_secret: whsec_") {
		t.Errorf("yaml.Marshal wrote durations or secrets in an unexpected form:\n%s", out)
	}
	back, err := Parse(out, "out.yaml")
	if err != nil {
		t.Fatalf("Parse(yaml.Marshal(full.yaml config)) error = %v\n%s", err, out)
	}
	back.File = c.File
	if g, w := withoutLines(back), withoutLines(c); !reflect.DeepEqual(g, w) {
		t.Errorf("Parse(Marshal(c)) =\n%+v\nwant\n%+v", g, w)
	}
}

// exampleEnv holds the values that the example configs under deploy/ may
// need from the environment. A new required variable in an example needs
// an entry here.
var exampleEnv = map[string]string{
	"HOOXRELAY_ADMIN_TOKEN": "example-admin-token",
	"HOOX_WEBHOOK_TOKEN":    "example-url-token",
	"HOOX_SIGNING_SECRET":   "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"MEDIA_SIGNING_SECRET":  "whsec_c2Vjb25kLXNlY3JldA==",
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// TestExamples loads every hooxrelay config under deploy/ so that none of
// them goes stale when the format changes.
func TestExamples(t *testing.T) {
	root := filepath.Join("..", "deploy")
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	topTargets := regexp.MustCompile(`(?m)^targets:`)
	loaded := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !topTargets.Match(data) {
			continue // a manifest or compose file, not a hooxrelay config
		}
		loaded++
		t.Run(path, func(t *testing.T) {
			// References in comments match too; setting those is harmless.
			for _, m := range envRefRE.FindAllStringSubmatch(string(data), -1) {
				if v, ok := exampleEnv[m[1]]; ok {
					t.Setenv(m[1], v)
				}
			}
			if _, err := Load(path); err != nil {
				t.Errorf("Load(%s) error (a variable that is not set needs an entry in exampleEnv):\n%v", path, err)
			}
		})
	}
	if loaded < 2 {
		t.Errorf("found %d hooxrelay configs under %s, want at least the 2 examples", loaded, root)
	}
}

// The compose example parses, and every file it mounts or builds from is
// in the repository.
func TestComposeExample(t *testing.T) {
	dir := filepath.Join("..", "deploy")
	data, err := os.ReadFile(filepath.Join(dir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build *struct {
				Context    string `yaml:"context"`
				Dockerfile string `yaml:"dockerfile"`
			} `yaml:"build"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for _, name := range []string{"redis", "relay-1", "relay-2", "sink", "lb"} {
		if _, ok := compose.Services[name]; !ok {
			t.Errorf("docker-compose.yml has no service %q", name)
		}
	}
	for name, svc := range compose.Services {
		if b := svc.Build; b != nil {
			if _, err := os.Stat(filepath.Join(dir, b.Context, b.Dockerfile)); err != nil {
				t.Errorf("service %s builds from a missing Dockerfile: %v", name, err)
			}
		}
		for _, v := range svc.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, "./") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join(dir, src)); err != nil {
				t.Errorf("service %s mounts a missing file: %v", name, err)
			}
		}
	}
}
