package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	"SHOP_WEBHOOK_SECRET":   "example-hmac-key",
	"HOOX_SIGNING_SECRET":   "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	"MEDIA_SIGNING_SECRET":  "whsec_c2Vjb25kLXNlY3JldA==",
	"BILLING_TOKEN":         "example-billing-token",
	"CRM_PASSWORD":          "example-crm-password",
	"REPORTS_CLIENT_SECRET": "example-client-secret",
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
			cfg, err := Load(path)
			if err != nil {
				t.Fatalf("Load(%s) error (a variable that is not set needs an entry in exampleEnv):\n%v", path, err)
			}
			checkSafeExample(t, cfg)
		})
	}
	if quick, err := Load(filepath.Join(root, "examples", "hooxrelay.yaml")); err != nil || !loopbackListen(quick.Server.Listen) {
		t.Errorf("the quick-start config listens on %q (%v); want a loopback address", quick.Server.Listen, err)
	}
	if loaded < 2 {
		t.Errorf("found %d hooxrelay configs under %s, want at least the 2 examples", loaded, root)
	}
}

// checkSafeExample holds a shipped config to what the README promises of
// them: none can make Hoox discard webhooks, and none takes unverified
// webhooks from the network.
func checkSafeExample(t *testing.T, cfg *Config) {
	t.Helper()
	for _, s := range cfg.Sources {
		// Hoox sends from a few addresses and gives up after three retries
		// in 7s: a per-IP limit on its source turns a burst into losses.
		if (s.Name == "hoox" || s.Path == "/hooks/hoox") && s.RateLimit.RPS > 0 {
			t.Errorf("source %s rate-limits Hoox per IP (rps %g): a burst would be discarded by Hoox", s.Name, s.RateLimit.RPS)
		}
		if s.Verify.Kind == VerifyNone && !loopbackListen(cfg.Server.Listen) {
			t.Errorf("source %s verifies nothing, and server.listen %q is not loopback", s.Name, cfg.Server.Listen)
		}
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
			Image      string   `yaml:"image"`
			PullPolicy string   `yaml:"pull_policy"`
			Ports      []string `yaml:"ports"`
			Volumes    []string `yaml:"volumes"`
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
	builds := map[string]string{} // image -> the service that builds it
	for name, svc := range compose.Services {
		if b := svc.Build; b != nil {
			if _, err := os.Stat(filepath.Join(dir, b.Context, b.Dockerfile)); err != nil {
				t.Errorf("service %s builds from a missing Dockerfile: %v", name, err)
			}
			if other, dup := builds[svc.Image]; dup {
				t.Errorf("services %s and %s both build %s; build it once", other, name, svc.Image)
			}
			builds[svc.Image] = name
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %q on every interface; bind it to 127.0.0.1", name, p)
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
	for name, svc := range compose.Services {
		if _, built := builds[svc.Image]; built && svc.Build == nil && svc.PullPolicy != "never" {
			t.Errorf("service %s runs the image %s built by %s; it needs pull_policy: never, or compose tries to pull it", name, svc.Image, builds[svc.Image])
		}
	}

	// nginx retries a POST on the other relay only with non_idempotent.
	nginx, err := os.ReadFile(filepath.Join(dir, "compose", "nginx.conf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*proxy_next_upstream\s+([^;]*);`).FindSubmatch(nginx)
	if m == nil || !slices.Contains(strings.Fields(string(m[1])), "http_503") || !slices.Contains(strings.Fields(string(m[1])), "non_idempotent") {
		t.Errorf("nginx.conf: proxy_next_upstream %q; want http_503 and non_idempotent, or a webhook POST is never retried on the other relay", m)
	}
}

// k8sObject is the part of a Kubernetes manifest that the deploy tests
// read; unknown fields are ignored.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"` // Kustomization
	Spec       struct {
		Replicas       *int                        `yaml:"replicas"`
		MinAvailable   *int                        `yaml:"minAvailable"`
		Selector       map[string]any              `yaml:"selector"` // matchLabels, or a Service's labels
		ScaleTargetRef struct{ Kind, Name string } `yaml:"scaleTargetRef"`
		MinReplicas    int                         `yaml:"minReplicas"`
		Ports          []k8sPort                   `yaml:"ports"`
		Template       struct {
			Metadata struct {
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec k8sPodSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// selectorLabels returns the labels a selector requires: its matchLabels,
// or for a Service the selector itself.
func selectorLabels(sel map[string]any) map[string]string {
	if ml, ok := sel["matchLabels"].(map[string]any); ok {
		sel = ml
	}
	out := map[string]string{}
	for k, v := range sel {
		out[k] = fmt.Sprint(v)
	}
	return out
}

type k8sPort struct {
	Name          string `yaml:"name"`
	Port          int    `yaml:"port"`
	ContainerPort int    `yaml:"containerPort"`
	TargetPort    string `yaml:"targetPort"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type k8sPodSpec struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	Containers []struct {
		Args    []string `yaml:"args"`
		EnvFrom []struct {
			SecretRef struct{ Name string } `yaml:"secretRef"`
		} `yaml:"envFrom"`
		Ports          []k8sPort `yaml:"ports"`
		LivenessProbe  k8sProbe  `yaml:"livenessProbe"`
		ReadinessProbe k8sProbe  `yaml:"readinessProbe"`
		Lifecycle      struct {
			PreStop struct {
				Sleep struct{ Seconds int } `yaml:"sleep"`
			} `yaml:"preStop"`
		} `yaml:"lifecycle"`
		Resources struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	} `yaml:"containers"`
	Volumes []struct {
		Name      string `yaml:"name"`
		ConfigMap *struct {
			Name string `yaml:"name"`
		} `yaml:"configMap"`
	} `yaml:"volumes"`
}

// readManifests decodes every YAML document of every file in dir, keyed
// by kind (each kind appears once in deploy/kubernetes).
func readManifests(t *testing.T, dir string) (byKind map[string]k8sObject, files []string) {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in %s: %v", dir, err)
	}
	byKind = map[string]k8sObject{}
	for _, path := range paths {
		files = append(files, filepath.Base(path))
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		for i := 0; ; i++ {
			var doc yaml.Node
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: document %d: %v", path, i, err)
			}
			if len(doc.Content) == 0 || doc.Content[0].Tag == "!!null" {
				continue // an empty document, e.g. after a trailing "---"
			}
			var o k8sObject
			if err := doc.Decode(&o); err != nil {
				t.Fatalf("%s: document %d: %v", path, i, err)
			}
			if o.APIVersion == "" || o.Kind == "" {
				t.Errorf("%s: document %d has no apiVersion or kind", path, i)
			}
			if o.Metadata.Name == "" && o.Kind != "Kustomization" {
				t.Errorf("%s: %s has no metadata.name", path, o.Kind)
			}
			if o.Metadata.Namespace != "" {
				t.Errorf("%s: %s %s sets metadata.namespace %q; the manifests must stay namespace-agnostic", path, o.Kind, o.Metadata.Name, o.Metadata.Namespace)
			}
			if _, dup := byKind[o.Kind]; dup {
				t.Errorf("%s: a second %s", path, o.Kind)
			}
			byKind[o.Kind] = o
		}
	}
	return byKind, files
}

// The Kubernetes manifests hang together: the expected kinds, probes on
// the admin port, a grace period longer than the relay's shutdown, and an
// embedded config that is valid with every variable the Secret provides.
func TestKubernetesManifests(t *testing.T) {
	dir := filepath.Join("..", "deploy", "kubernetes")
	byKind, files := readManifests(t, dir)
	kinds := slices.Sorted(maps.Keys(byKind))
	want := []string{"ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Kustomization", "PodDisruptionBudget", "Secret", "Service"}
	if !slices.Equal(kinds, want) {
		t.Fatalf("kinds in %s = %v, want %v", dir, kinds, want)
	}
	cm, secret, dep, svc := byKind["ConfigMap"], byKind["Secret"], byKind["Deployment"], byKind["Service"]

	// The config in the ConfigMap, with every variable it names set from
	// the Secret, which must provide them all.
	const key = "hooxrelay.yaml"
	embedded, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no data.%s", cm.Metadata.Name, key)
	}
	for _, m := range envRefRE.FindAllStringSubmatch(embedded, -1) {
		v, ok := secret.StringData[m[1]]
		if !ok {
			t.Errorf("the ConfigMap's config uses ${%s}, which the Secret %s does not set", m[1], secret.Metadata.Name)
		}
		t.Setenv(m[1], v)
	}
	cfg, err := Parse([]byte(embedded), "configmap.yaml:"+key)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatalf("the config in configmap.yaml does not load:\n%v", err)
	}
	if cfg.Store.Kind != StoreRedis {
		t.Errorf("ConfigMap config: store.kind = %q; several replicas need %q", cfg.Store.Kind, StoreRedis)
	}
	checkSafeExample(t, cfg)
	if cfg.Server.AdminToken == "" {
		t.Errorf("ConfigMap config: server.admin_token is empty; the admin port is reachable in the cluster")
	}
	_, adminPort, _ := strings.Cut(cfg.Server.AdminListen, ":")
	_, httpPort, _ := strings.Cut(cfg.Server.Listen, ":")

	// The Deployment runs that config with that Secret.
	pod := dep.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment %s has %d containers, want 1", dep.Metadata.Name, len(pod.Containers))
	}
	c := pod.Containers[0]
	if r := dep.Spec.Replicas; r == nil || *r < 2 {
		t.Errorf("Deployment replicas = %v, want at least 2", r)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if strconv.Itoa(ports["admin"]) != adminPort || strconv.Itoa(ports["http"]) != httpPort {
		t.Errorf("container ports %v, want http on %s and admin on %s (server.listen and server.admin_listen)", ports, httpPort, adminPort)
	}
	for _, p := range []struct {
		name  string
		probe k8sProbe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/healthz"}, {"readinessProbe", c.ReadinessProbe, "/readyz"}} {
		if g := p.probe.HTTPGet; g == nil || g.Path != p.path || (g.Port != "admin" && g.Port != adminPort) {
			t.Errorf("%s = %+v, want httpGet %s on the admin port (%s)", p.name, g, p.path, adminPort)
		}
	}
	shutdown := cfg.Server.ShutdownTimeout.D() + time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace <= shutdown {
		t.Errorf("terminationGracePeriodSeconds = %s, want more than server.shutdown_timeout plus the preStop sleep (%s)", grace, shutdown)
	}
	if !pod.SecurityContext.RunAsNonRoot || !c.SecurityContext.ReadOnlyRootFilesystem ||
		c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("Deployment security: runAsNonRoot %v, readOnlyRootFilesystem %v, allowPrivilegeEscalation %v; want true, true, false",
			pod.SecurityContext.RunAsNonRoot, c.SecurityContext.ReadOnlyRootFilesystem, c.SecurityContext.AllowPrivilegeEscalation)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("Deployment has no resources.requests.%s", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Errorf("Deployment has no resources.limits.memory")
	}
	if a := dep.Spec.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != adminPort {
		t.Errorf("pod annotations %v, want prometheus.io/scrape \"true\" and prometheus.io/port %q", a, adminPort)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef.Name != secret.Metadata.Name {
		t.Errorf("container envFrom = %+v, want the Secret %q", c.EnvFrom, secret.Metadata.Name)
	}
	cfgPath := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm.Metadata.Name && path.Join(m.MountPath, key) == cfgPath {
				mounted = true
			}
		}
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" || !mounted {
		t.Errorf("container args %q: want serve --config <the ConfigMap's %s where it is mounted>", c.Args, key)
	}
	// In-cluster https targets have certificates of the cluster's CA, which
	// the image does not trust: each names a ca_file that a volume provides.
	for _, tg := range cfg.Targets {
		u, err := url.Parse(tg.URL)
		if err != nil || u.Scheme != "https" || !strings.Contains(u.Hostname(), ".svc") {
			continue
		}
		provided := false
		for _, m := range c.VolumeMounts {
			if tg.TLS.CAFile != "" && path.Dir(tg.TLS.CAFile) == m.MountPath {
				provided = true
			}
		}
		if !provided {
			t.Errorf("target %s (%s) has tls.ca_file %q, which no volume of the Deployment provides", tg.Name, tg.URL, tg.TLS.CAFile)
		}
	}

	// The Service, the budget and the autoscaler select these pods.
	labels := dep.Spec.Template.Metadata.Labels
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	if sel := selectorLabels(dep.Spec.Selector); !matches(sel) {
		t.Errorf("Deployment selector %v does not match its pod labels %v", sel, labels)
	}
	if pdb := byKind["PodDisruptionBudget"]; !matches(selectorLabels(pdb.Spec.Selector)) || pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != 1 {
		t.Errorf("PodDisruptionBudget: selector %v, minAvailable %v; want the pods' labels and 1", pdb.Spec.Selector, pdb.Spec.MinAvailable)
	}
	if hpa := byKind["HorizontalPodAutoscaler"]; hpa.APIVersion != "autoscaling/v2" || hpa.Spec.ScaleTargetRef.Kind != "Deployment" ||
		hpa.Spec.ScaleTargetRef.Name != dep.Metadata.Name || hpa.Spec.MinReplicas < 2 {
		t.Errorf("HorizontalPodAutoscaler %s: %+v, minReplicas %d; want autoscaling/v2 on Deployment %s with at least 2", hpa.APIVersion, hpa.Spec.ScaleTargetRef, hpa.Spec.MinReplicas, dep.Metadata.Name)
	}
	svcSel := selectorLabels(svc.Spec.Selector)
	svcPorts := map[string]string{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = strconv.Itoa(p.Port)
	}
	if !matches(svcSel) || svcPorts["http"] != httpPort || svcPorts["admin"] != adminPort {
		t.Errorf("Service: selector %v, ports %v; want the pods' labels, http %s and admin %s", svcSel, svcPorts, httpPort, adminPort)
	}

	// The kustomization lists every manifest but the example Secret.
	k := byKind["Kustomization"]
	for _, f := range files {
		listed := slices.Contains(k.Resources, f)
		switch f {
		case "kustomization.yaml":
		case "secret.yaml":
			if listed {
				t.Errorf("kustomization.yaml lists secret.yaml: apply -k would overwrite the real Secret with placeholders")
			}
		default:
			if !listed {
				t.Errorf("kustomization.yaml does not list %s", f)
			}
		}
	}
	for _, r := range k.Resources {
		if !slices.Contains(files, r) {
			t.Errorf("kustomization.yaml lists %s, which is not in %s", r, dir)
		}
	}
}

// unitKeys returns every Key=Value line of a systemd unit, comments and
// section headers left out; a key set several times has several values.
func unitKeys(t *testing.T, file string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: %q is not Key=Value", file, line)
			continue
		}
		keys[k] = append(keys[k], v)
	}
	return keys
}

// The systemd unit reloads with SIGHUP, keeps its sandbox, gives the relay
// time to shut down, and runs a config that loads with the variables of
// env.example and keeps its store in the StateDirectory.
func TestSystemdUnit(t *testing.T) {
	dir := filepath.Join("..", "deploy", "systemd")
	keys := unitKeys(t, filepath.Join(dir, "hooxrelay.service"))
	for _, want := range []string{
		"ExecReload=/bin/kill -HUP $MAINPID",
		"EnvironmentFile=-/etc/hooxrelay/env",
		"Restart=on-failure",
		"DynamicUser=yes",
		"StateDirectory=hooxrelay",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"NoNewPrivileges=yes",
		"CapabilityBoundingSet=",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter=@system-service",
		"MemoryDenyWriteExecute=yes",
		"LockPersonality=yes",
	} {
		k, v, _ := strings.Cut(want, "=")
		if !slices.Contains(keys[k], v) {
			t.Errorf("hooxrelay.service: no line %q (%s is %q)", want, k, keys[k])
		}
	}
	if v := keys["AmbientCapabilities"]; len(v) > 0 && v[len(v)-1] != "" {
		t.Errorf("hooxrelay.service: AmbientCapabilities=%s; the relay's ports need no capability", v[len(v)-1])
	}

	start := keys["ExecStart"]
	if len(start) != 1 {
		t.Fatalf("hooxrelay.service: ExecStart = %q, want one", start)
	}
	args := strings.Fields(start[0])
	cfgPath := ""
	for i, a := range args {
		if a == "--config" && i+1 < len(args) {
			cfgPath = args[i+1]
		}
	}
	if len(args) < 2 || args[1] != "serve" || path.Base(cfgPath) != "hooxrelay.yaml" {
		t.Fatalf("hooxrelay.service: ExecStart=%s, want hooxrelay serve --config .../hooxrelay.yaml", start[0])
	}

	// The config the unit runs, with the variables of env.example.
	env, err := os.ReadFile(filepath.Join(dir, "env.example"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(env)) {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && line[0] != '#' {
			t.Setenv(k, v)
		}
	}
	cfg, err := Load(filepath.Join(dir, "hooxrelay.yaml"))
	if err != nil {
		t.Fatalf("deploy/systemd/hooxrelay.yaml with the variables of env.example:\n%v", err)
	}
	stateDir := "/var/lib/" + keys["StateDirectory"][0] + "/"
	if cfg.Store.Kind != StoreEmbedded || !strings.HasPrefix(cfg.Store.Path, stateDir) {
		t.Errorf("hooxrelay.yaml: store %s at %q, want the embedded store under %s", cfg.Store.Kind, cfg.Store.Path, stateDir)
	}
	stop, err := time.ParseDuration(strings.Join(keys["TimeoutStopSec"], ""))
	if err != nil || stop <= cfg.Server.ShutdownTimeout.D() {
		t.Errorf("hooxrelay.service: TimeoutStopSec=%s (%v), want a duration longer than server.shutdown_timeout (%s)", keys["TimeoutStopSec"], err, cfg.Server.ShutdownTimeout)
	}
}

// Check reports decoding and meaning problems in one run, and leaves out
// the complaints that only repeat a decoding problem.
func TestCheckReportsEverything(t *testing.T) {
	in := `server:
  listn: ":8080"
sources:
  - name: hoox
    path: /hooks/hoox
    verify: {kind: token, secrest: [abc]}
targets:
  - name: media
    url: http://127.0.0.1:9101/hook
    timeout: -5s
    max_in_flight: many
routes:
  - name: videos
    targets: [media, nowhere]
`
	_, err := Check([]byte(in), "c.yaml")
	want := []string{
		`c.yaml:2: server.listn: unknown key; did you mean "listen"?`,
		`c.yaml:6: sources[0].verify.secrest: unknown key; did you mean "secrets"?`,
		`c.yaml:10: targets[0].timeout: must be a positive duration such as "10s", got "-5s"`,
		`c.yaml:11: targets[0].max_in_flight: must be a whole number, got "many"`,
		`c.yaml:14: routes[0].targets[1]: unknown target "nowhere"; define it under targets: or use one of "media"`,
	}
	if got := fmt.Sprint(err); got != strings.Join(want, "\n") {
		t.Errorf("Check error =\n%s\nwant (no \"at least one secret\" for the mistyped secrets, nothing about max_in_flight's default)\n%s", got, strings.Join(want, "\n"))
	}
	if n := len(FieldErrors(err)); n != len(want) {
		t.Errorf("Check gave %d FieldErrors, want %d", n, len(want))
	}

	// A target whose name is mistyped takes its routes' complaints along.
	_, err = Check([]byte("sources: [{name: a, path: /a}]\ntargets:\n  - nmae: media\n    url: http://127.0.0.1:1/\nroutes: [{name: r, targets: [media]}]\n"), "d.yaml")
	if got, want := fmt.Sprint(err), `d.yaml:3: targets[0].nmae: unknown key; did you mean "name"?`; got != want {
		t.Errorf("Check with a mistyped target name: error\n%s\nwant only\n%s", got, want)
	}
	if c, err := Check([]byte("sources: [{name: a, path: /a}]\ntargets: [{name: t, url: \"http://127.0.0.1:1/\"}]\n"), "ok.yaml"); err != nil || c == nil || c.Targets[0].Name != "t" {
		t.Errorf("Check of a valid config = %v, %v", c, err)
	}
}

// Check runs the checks of other packages on the decoded config, even
// when it has problems of its own, places what they find at the line of
// its key (or of the nearest key written), and reports it with the rest.
func TestCheckRunsMore(t *testing.T) {
	in := `sources: [{name: hoox, path: /hooks/hoox}]
targets:
  - name: media
    url: http://example.com/hook
routes:
  - name: r
    targets: [media]
    match:
      where:
        - {path: a, op: in, value: []}
        - path: b
          op: exists
          value: [1, {x: 2}]
        - {path: c, value: "${HOOXTEST_UNSET_VALUE}"}
`
	var seen *Config
	more := func(c *Config) error {
		seen = c
		return errors.Join(
			&FieldError{Path: "routes[0].match.where[0].value", Msg: "must not be empty"},
			errors.Join(&FieldError{Path: "routes[0].match.where[1].value[1]", Msg: "must be a string"}),
			&FieldError{Path: "routes[0].match.where[1].op", Msg: "is odd"},
			&FieldError{Path: "routes[0].match.where[2].op", Msg: "is required"},
			&FieldError{Path: "routes[0].match.where[2].value", Msg: "repeats the decoding error"},
			errors.New("not about a key"),
		)
	}
	_, err := Check([]byte(in), "m.yaml", more)
	want := []string{
		`not about a key`,
		`m.yaml:4: targets[0].url: must be https, got "http://example.com/hook": plain http is only allowed to localhost, 127.0.0.0/8 and ::1`,
		`m.yaml:10: routes[0].match.where[0].value: must not be empty`,
		`m.yaml:12: routes[0].match.where[1].op: is odd`,
		`m.yaml:13: routes[0].match.where[1].value[1]: must be a string`,
		`m.yaml:14: routes[0].match.where[2].value: environment variable "HOOXTEST_UNSET_VALUE" is not set; export it or give a default with ${HOOXTEST_UNSET_VALUE:-value}`,
		`m.yaml:14: routes[0].match.where[2].op: is required`, // left out: the line of where[2]
		// and nothing about where[2].value: it repeats the decoding error
	}
	if got := fmt.Sprint(err); got != strings.Join(want, "\n") {
		t.Errorf("Check error =\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	if seen == nil || len(seen.Routes) != 1 || len(seen.Routes[0].Match.Where) != 3 {
		t.Errorf("the check saw %+v, want the decoded config with its 3 conditions", seen)
	}
	if c, err := Check([]byte(okAll), "ok.yaml", func(*Config) error { return nil }); err != nil || c == nil {
		t.Errorf("Check of a valid config with a check that finds nothing = %v, %v", c, err)
	}
}
