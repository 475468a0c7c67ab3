package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The commands that deploy/ runs exist with the flags it passes. The
// manifests themselves are checked in the config package's tests.

// The config embedded in the Kubernetes ConfigMap passes "hooxrelay
// check" with the Secret's (placeholder) values in the environment.
func TestKubernetesConfigChecks(t *testing.T) {
	dir := filepath.Join("..", "..", "deploy", "kubernetes")
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	var secret struct {
		StringData map[string]string `yaml:"stringData"`
	}
	for file, v := range map[string]any{"configmap.yaml": &cm, "secret.yaml": &secret} {
		data, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(data, v); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	for k, v := range secret.StringData {
		t.Setenv(k, v)
	}
	cfg := filepath.Join(t.TempDir(), "hooxrelay.yaml")
	if err := os.WriteFile(cfg, []byte(cm.Data["hooxrelay.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCmd(t, "", "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("hooxrelay check --config <configmap.yaml's hooxrelay.yaml>: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
}

// The systemd unit's ExecReload check passes on deploy/systemd/hooxrelay.yaml,
// and serve takes the flags of ExecStart and of the Deployment's args.
func TestDeployCommandLines(t *testing.T) {
	root := filepath.Join("..", "..", "deploy")
	t.Setenv("HOOX_WEBHOOK_TOKEN", "placeholder-token")
	t.Setenv("HOOXRELAY_ADMIN_TOKEN", "placeholder-admin-token")
	if out, stderr, code := runCmd(t, "", "check", "--config", filepath.Join(root, "systemd", "hooxrelay.yaml")); code != 0 {
		t.Errorf("hooxrelay check --config deploy/systemd/hooxrelay.yaml: exit %d\n%s%s", code, out, stderr)
	}

	unit, err := os.ReadFile(filepath.Join(root, "systemd", "hooxrelay.service"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=\S+ (.*)$`).FindSubmatch(unit)
	if m == nil {
		t.Fatal("hooxrelay.service has no ExecStart line")
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `yaml:"args"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	data, err := os.ReadFile(filepath.Join(root, "kubernetes", "deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &dep); err != nil || len(dep.Spec.Template.Spec.Containers) == 0 {
		t.Fatalf("deployment.yaml: %v, or no container", err)
	}
	for name, args := range map[string][]string{
		"ExecStart":       strings.Fields(string(m[1])),
		"Deployment args": dep.Spec.Template.Spec.Containers[0].Args,
	} {
		// With a config that does not exist, serve fails on the config, so
		// only an unknown flag would give a different error.
		args = withFlag(args, "--config", filepath.Join(t.TempDir(), "absent.yaml"))
		_, stderr, code := runCmd(t, "", args...)
		if code != 2 || !strings.Contains(stderr, "not found") {
			t.Errorf("%s: hooxrelay %q: exit %d, stderr %q; want exit 2 for the absent config only", name, args, code, stderr)
		}
	}
}

// withFlag returns args with the value of flag replaced by value.
func withFlag(args []string, flag, value string) []string {
	out := append([]string(nil), args...)
	for i := range out {
		if out[i] == flag && i+1 < len(out) {
			out[i+1] = value
		}
	}
	return out
}

// The Dockerfile's HEALTHCHECK runs "hooxrelay health" with flags it takes,
// against /healthz.
func TestDockerfileHealthcheck(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.ReplaceAll(string(data), "\\\n", " ") // continuation lines
	m := regexp.MustCompile(`(?m)^HEALTHCHECK .*?CMD (\[.*\])\s*$`).FindStringSubmatch(joined)
	if m == nil {
		t.Fatal("deploy/Dockerfile has no HEALTHCHECK ... CMD [...] (exec form: the image has no shell)")
	}
	var argv []string
	if err := json.Unmarshal([]byte(m[1]), &argv); err != nil || len(argv) < 2 || argv[0] != "/hooxrelay" || argv[1] != "health" {
		t.Fatalf("HEALTHCHECK CMD %s: want [\"/hooxrelay\", \"health\", ...] (%v)", m[1], err)
	}
	var target string
	for i, a := range argv {
		if a == "--url" && i+1 < len(argv) {
			target = argv[i+1]
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Path != "/healthz" || u.Port() != "9090" {
		t.Fatalf("HEALTHCHECK --url %q: want /healthz on the admin port 9090", target)
	}
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
		w.Write([]byte(`{"status":"ok"}`))
	}))
	defer srv.Close()
	args := withFlag(argv[1:], "--url", srv.URL+u.Path)
	if out, stderr, code := runCmd(t, "", args...); code != 0 || got != "/healthz" {
		t.Errorf("hooxrelay %q: exit %d (stdout %q, stderr %q), asked %q; want exit 0 after GET /healthz", args, code, out, stderr, got)
	}
}
