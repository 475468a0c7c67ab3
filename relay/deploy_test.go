package relay_test

// Tests of the monitoring files under deploy/: the Prometheus alerting rules
// and the Grafana dashboard may name only metrics and labels that the relay
// exports, so that renaming a metric breaks a test here instead of silently
// emptying a panel or disarming an alert.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/testenv"
	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.yaml.in/yaml/v3"
)

var (
	alertsFile    = filepath.Join("..", "deploy", "prometheus", "alerts.yaml")
	dashboardFile = filepath.Join("..", "deploy", "grafana", "hooxrelay-dashboard.json")
)

// exportedMetric is what a query may ask of one metric family.
type exportedMetric struct {
	kind   string          // COUNTER, GAUGE, HISTOGRAM, SUMMARY, ...; "" when unknown
	labels map[string]bool // its own labels and those Prometheus adds on scrape
}

// exportedMetrics returns the metric families on the relay's /metrics, by
// name: every collector field of relay.Metrics, found by reflection so that
// a new field counts without a change here, and the Go runtime and process
// collectors that relay.Server registers. "up" is Prometheus's own.
func exportedMetrics(t *testing.T) map[string]exportedMetric {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := relay.NewMetrics(reg)

	// Describe lists a vector's family even when it has no series yet.
	descRE := regexp.MustCompile(`^Desc\{fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)
	out := map[string]exportedMetric{}
	v := reflect.ValueOf(m).Elem()
	collectorType := reflect.TypeFor[prometheus.Collector]()
	for i := range v.NumField() {
		f, field := v.Field(i), v.Type().Field(i)
		if !field.IsExported() || !f.Type().Implements(collectorType) || f.IsNil() {
			continue
		}
		c := f.Interface().(prometheus.Collector)
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		var descs []*prometheus.Desc
		for d := range ch {
			descs = append(descs, d)
		}
		for _, d := range descs {
			sm := descRE.FindStringSubmatch(d.String())
			if sm == nil {
				t.Fatalf("relay.Metrics.%s: cannot read the descriptor %s", field.Name, d)
			}
			em := exportedMetric{labels: map[string]bool{}}
			var labels []reflect.Value
			for l := range strings.SplitSeq(sm[2], ",") {
				if l != "" {
					em.labels[strings.TrimSuffix(strings.TrimPrefix(l, "c("), ")")] = true
					labels = append(labels, reflect.ValueOf("x"))
				}
			}
			out[sm[1]] = em
			// A vector shows in Gather, which tells its type, once it has
			// a child.
			if wlv := f.MethodByName("WithLabelValues"); wlv.IsValid() && len(descs) == 1 {
				wlv.Call(labels)
			}
		}
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() error: %v", err)
	}
	// The metrics a Server adds to its registry besides Metrics, such as
	// those computed at scrape time, from a real relay with one target.
	h := startRelay(t, settingsFor(t, target(newSink(t, "x", ok))), "")
	for name, mf := range h.metrics(t) {
		if _, ok := out[name]; !ok && strings.HasPrefix(name, "hooxrelay_") {
			families = append(families, mf)
		}
	}
	for _, mf := range families {
		em, ok := out[mf.GetName()]
		if !ok {
			em = exportedMetric{labels: map[string]bool{}}
			for _, s := range mf.GetMetric() {
				for _, lp := range s.GetLabel() {
					em.labels[lp.GetName()] = true
				}
			}
		}
		em.kind = mf.GetType().String()
		out[mf.GetName()] = em
	}
	out["up"] = exportedMetric{kind: "GAUGE", labels: map[string]bool{}}
	for _, em := range out {
		em.labels["job"], em.labels["instance"] = true, true
	}
	// A broken reflection walk would pass every check below vacuously.
	for _, name := range []string{"hooxrelay_ingress_requests_total", "hooxrelay_delivery_duration_seconds", "go_goroutines"} {
		if _, ok := out[name]; !ok {
			t.Fatalf("exported metrics lack %s; found %v", name, slices.Sorted(maps.Keys(out)))
		}
	}
	return out
}

var (
	// metricNameRE finds the names of the relay's metrics, the Go and
	// process collectors' and "up" in a PromQL expression without its
	// strings; "up" only as a selector, so that it cannot be a label.
	metricNameRE  = regexp.MustCompile(`\b(?:(?:hooxrelay|go|process)_[A-Za-z0-9_]*|up\s*\{)`)
	selectorRE    = regexp.MustCompile(`\b((?:hooxrelay|go|process)_[A-Za-z0-9_]*|up)\s*\{([^}]*)\}`)
	matcherRE     = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRE    = regexp.MustCompile(`\b(?:by|without|on|ignoring)\s*\(([^)]*)\)`)
	labelValuesRE = regexp.MustCompile(`\blabel_values\([^,()]*(?:\{[^}]*\})?\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)`)
	quotedRE      = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// resolve returns the family that a series name belongs to: itself, or a
// histogram's or summary's for its _bucket, _sum and _count series.
func resolve(exported map[string]exportedMetric, name string) (exportedMetric, bool) {
	if em, ok := exported[name]; ok {
		return em, true
	}
	for suffix, kinds := range map[string][]string{
		"_bucket": {"HISTOGRAM"},
		"_sum":    {"HISTOGRAM", "SUMMARY"},
		"_count":  {"HISTOGRAM", "SUMMARY"},
	} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if em, ok := exported[base]; ok && slices.Contains(kinds, em.kind) {
				return em, true
			}
		}
	}
	return exportedMetric{}, false
}

// checkExpr reports every metric that expr names and the relay does not
// export, every label matcher on a label that metric does not have, and
// every grouping label (or label_values label, in a Grafana variable query)
// that none of the expression's metrics has.
func checkExpr(exported map[string]exportedMetric, expr string) []string {
	var problems []string
	// Label values such as "$target" or a regular expression are not PromQL.
	expr = quotedRE.ReplaceAllString(expr, `""`)
	names := map[string]bool{}
	for _, name := range metricNameRE.FindAllString(expr, -1) {
		names[strings.TrimRight(name, " \t\n{")] = true
	}
	if len(names) == 0 {
		problems = append(problems, "names no metric of the relay")
	}
	allLabels := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		em, ok := resolve(exported, name)
		if !ok {
			problems = append(problems, fmt.Sprintf("names %s, which the relay does not export", name))
			continue
		}
		for l := range em.labels {
			allLabels[l] = true
		}
		if strings.HasSuffix(name, "_bucket") {
			allLabels["le"] = true
		}
	}
	for _, sm := range selectorRE.FindAllStringSubmatch(expr, -1) {
		em, ok := resolve(exported, sm[1])
		if !ok {
			continue // reported above
		}
		for _, mm := range matcherRE.FindAllStringSubmatch(sm[2], -1) {
			if l := mm[1]; !em.labels[l] && !(l == "le" && strings.HasSuffix(sm[1], "_bucket")) && l != "__name__" {
				problems = append(problems, fmt.Sprintf("selects %s on label %q, which it does not have (it has %v)",
					sm[1], l, slices.Sorted(maps.Keys(em.labels))))
			}
		}
	}
	for _, lm := range labelValuesRE.FindAllStringSubmatch(expr, -1) {
		if !allLabels[lm[1]] {
			problems = append(problems, fmt.Sprintf("asks for the values of label %q, which its metric does not have", lm[1]))
		}
	}
	for _, gm := range groupingRE.FindAllStringSubmatch(expr, -1) {
		for l := range strings.SplitSeq(gm[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !allLabels[l] {
				problems = append(problems, fmt.Sprintf("groups by label %q, which none of its metrics has", l))
			}
		}
	}
	return problems
}

// ruleFile is the part of a Prometheus rule file that these tests read;
// unknown keys are errors, so a misspelt "annotations" does not pass.
type ruleFile struct {
	Groups []struct {
		Name     string      `yaml:"name"`
		Interval string      `yaml:"interval,omitempty"`
		Rules    []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

type alertRule struct {
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for,omitempty"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations,omitempty"`
}

func loadAlerts(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rf ruleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("decode %s: %v", alertsFile, err)
	}
	return rf
}

func TestDeployAlerts(t *testing.T) {
	exported := exportedMetrics(t)
	rf := loadAlerts(t)
	if len(rf.Groups) != 1 || rf.Groups[0].Name != "hooxrelay" || len(rf.Groups[0].Rules) == 0 {
		t.Fatalf("%s: want one group named hooxrelay with rules, got %d groups", alertsFile, len(rf.Groups))
	}
	seen := map[string]bool{}
	for i, r := range rf.Groups[0].Rules {
		name := r.Alert
		if name == "" {
			name = fmt.Sprintf("rules[%d]", i)
			t.Errorf("%s: %s has no alert name (recording rules belong elsewhere)", alertsFile, name)
		}
		t.Run(name, func(t *testing.T) {
			if seen[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("expr is empty")
			}
			if d, err := time.ParseDuration(r.For); err != nil || d < 0 {
				t.Errorf("for: %q, want a duration such as 5m (%v)", r.For, err)
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("labels.severity = %q, want critical, warning or info", s)
			}
			for _, key := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[key]) == "" {
					t.Errorf("annotations.%s is empty", key)
				}
			}
			for _, p := range checkExpr(exported, r.Expr) {
				t.Errorf("expr %s:\n%s", p, r.Expr)
			}
		})
	}
}

// TestDeployAlertsPromtool checks the rules with Prometheus's own parser and
// runs each alert against made-up series to see that it fires when it
// should and stays quiet when it should not.
func TestDeployAlertsPromtool(t *testing.T) {
	promtool := testenv.LookPath(t, "promtool", testenv.InstallPromtool)
	if out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", alertsFile, err, out)
	}

	// promtool compares annotations exactly; they are prose, so test a copy
	// without them.
	rf := loadAlerts(t)
	for i := range rf.Groups {
		for j := range rf.Groups[i].Rules {
			rf.Groups[i].Rules[j].Annotations = nil
		}
	}
	rules, err := yaml.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test.yaml"), []byte(alertsPromtoolTest), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "test", "rules", "test.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// alertsPromtoolTest is a promtool rule test of deploy/prometheus/alerts.yaml
// (as rules.yaml, without its annotations).
const alertsPromtoolTest = `
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'up{job="hooxrelay",instance="r1"}'
        values: '1 1 0 0 0 0'
      # Open, then half-open for each probe, which fails: one alert.
      - series: 'hooxrelay_breaker_state{job="hooxrelay",instance="r1",target="media"}'
        values: '0 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2 1 2'
      # Open once, then recovered: no alert.
      - series: 'hooxrelay_breaker_state{job="hooxrelay",instance="r1",target="billing"}'
        values: '0 2 1 2 1 2 0 0 0 0 0 0 0 0 0 0 0 0 0 0'
      # The first dead delivery since a restart: the counter's series
      # starts at 1, which increase() does not see.
      - series: 'hooxrelay_deliveries_total{job="hooxrelay",instance="r1",target="media",outcome="dead"}'
        values: '_ _ _ _ _ 1 1 1 1 1'
      - series: 'hooxrelay_queue_depth{job="hooxrelay",instance="r1",target="media",state="dead"}'
        values: '0 0 0 0 0 1 1 1 1 1'
      # Likewise the first failed reload.
      - series: 'hooxrelay_config_reloads_total{job="hooxrelay",instance="r1",result="success"}'
        values: '1 1 1 1 1 1 1 1 1 1'
      - series: 'hooxrelay_config_reloads_total{job="hooxrelay",instance="r1",result="failure"}'
        values: '_ _ _ _ _ 1 1 1 1 1'
    alert_rule_test:
      - eval_time: 1m
        alertname: HooxrelayDown
      - eval_time: 5m
        alertname: HooxrelayDown
        exp_alerts:
          - exp_labels: {severity: critical, job: hooxrelay, instance: r1}
      - eval_time: 5m
        alertname: HooxrelayBreakerOpen
      - eval_time: 13m
        alertname: HooxrelayBreakerOpen
        exp_alerts:
          - exp_labels: {severity: warning, job: hooxrelay, instance: r1, target: media}
      - eval_time: 4m
        alertname: HooxrelayDeadLetters
      - eval_time: 7m
        alertname: HooxrelayDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning, target: media}
      - eval_time: 4m
        alertname: HooxrelayConfigReloadFailed
      - eval_time: 7m
        alertname: HooxrelayConfigReloadFailed
        exp_alerts:
          - exp_labels: {severity: warning, job: hooxrelay, instance: r1, result: failure}
      - eval_time: 7m
        alertname: HooxrelayScrapeTargetMissing

  - interval: 1m
    input_series:
      # One more dead delivery on a counter that already exists.
      - series: 'hooxrelay_deliveries_total{job="hooxrelay",instance="r1",target="media",outcome="dead"}'
        values: '3x10 4x30'
      # A failure long ago, nothing since.
      - series: 'hooxrelay_config_reloads_total{job="hooxrelay",instance="r1",result="failure"}'
        values: '1x40'
    alert_rule_test:
      - eval_time: 9m
        alertname: HooxrelayDeadLetters
      - eval_time: 12m
        alertname: HooxrelayDeadLetters
        exp_alerts:
          - exp_labels: {severity: warning, target: media}
      - eval_time: 35m
        alertname: HooxrelayDeadLetters
      - eval_time: 30m
        alertname: HooxrelayConfigReloadFailed
      - eval_time: 15m
        alertname: HooxrelayScrapeTargetMissing
        exp_alerts:
          - exp_labels: {severity: warning, job: hooxrelay}

  - interval: 1m
    input_series:
      # Over 1000 pending and rising.
      - series: 'hooxrelay_queue_depth{job="hooxrelay",instance="r1",target="media",state="pending"}'
        values: '2000+10x60'
      # Larger but draining.
      - series: 'hooxrelay_queue_depth{job="hooxrelay",instance="r1",target="billing",state="pending"}'
        values: '5000-10x60'
      - series: 'hooxrelay_targets_paused{job="hooxrelay",instance="r1",target="media"}'
        values: '1x200'
      - series: 'hooxrelay_targets_paused{job="hooxrelay",instance="r1",target="billing"}'
        values: '0x200'
      # A delivery that waits on and on, and one that goes out in seconds.
      - series: 'hooxrelay_oldest_pending_age_seconds{job="hooxrelay",instance="r1",target="media"}'
        values: '0+60x200'
      - series: 'hooxrelay_oldest_pending_age_seconds{job="hooxrelay",instance="r1",target="billing"}'
        values: '0 5 0 3 0x196'
    alert_rule_test:
      - eval_time: 10m
        alertname: HooxrelayQueueGrowing
      - eval_time: 35m
        alertname: HooxrelayQueueGrowing
        exp_alerts:
          - exp_labels: {severity: warning, target: media}
      - eval_time: 60m
        alertname: HooxrelayTargetPaused
      - eval_time: 125m
        alertname: HooxrelayTargetPaused
        exp_alerts:
          - exp_labels: {severity: info, target: media}
      - eval_time: 63m
        alertname: HooxrelayBacklogOld
      - eval_time: 70m
        alertname: HooxrelayBacklogOld
        exp_alerts:
          - exp_labels: {severity: warning, target: media}

  - interval: 1m
    input_series:
      # 10 webhooks/s, 5% answered 503 from minute 10.
      - series: 'hooxrelay_ingress_requests_total{job="hooxrelay",instance="r1",source="hoox",task="video_generate",outcome="accepted"}'
        values: '0+600x40'
      - series: 'hooxrelay_ingress_requests_total{job="hooxrelay",instance="r1",source="hoox",task="video_generate",outcome="unavailable"}'
        values: '0x10 0+30x30'
      # A source whose secret was rotated at minute 10.
      - series: 'hooxrelay_ingress_requests_total{job="hooxrelay",instance="r1",source="partner",task="none",outcome="invalid_signature"}'
        values: '0x10 0+60x30'
      - series: 'hooxrelay_ingress_verify_failures_total{job="hooxrelay",instance="r1",source="partner",reason="mismatch"}'
        values: '0x10 0+60x30'
      # A few stale signatures on the main source: below the threshold.
      - series: 'hooxrelay_ingress_verify_failures_total{job="hooxrelay",instance="r1",source="hoox",reason="stale"}'
        values: '0+1x40'
    alert_rule_test:
      - eval_time: 9m
        alertname: HooxrelayIngressUnavailable
      - eval_time: 20m
        alertname: HooxrelayIngressUnavailable
        exp_alerts:
          - exp_labels: {severity: critical, instance: r1}
      - eval_time: 9m
        alertname: HooxrelayVerifyFailures
      - eval_time: 30m
        alertname: HooxrelayVerifyFailures
        exp_alerts:
          - exp_labels: {severity: warning, source: partner}
`

func TestDeployDashboard(t *testing.T) {
	exported := exportedMetrics(t)
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title         string           `json:"title"`
		UID           string           `json:"uid"`
		SchemaVersion int              `json:"schemaVersion"`
		Panels        []map[string]any `json:"panels"`
		Templating    struct {
			List []map[string]any `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("decode %s: %v", dashboardFile, err)
	}
	if dash.Title == "" || dash.UID == "" || dash.SchemaVersion < 36 || len(dash.Panels) == 0 {
		t.Fatalf("%s: title %q, uid %q, schemaVersion %d, %d panels; want a title, a uid, schemaVersion >= 36 and panels",
			dashboardFile, dash.Title, dash.UID, dash.SchemaVersion, len(dash.Panels))
	}

	vars := map[string]bool{}
	for _, v := range dash.Templating.List {
		name, _ := v["name"].(string)
		vars[name] = true
		if v["type"] != "query" {
			continue
		}
		q := v["definition"]
		if obj, ok := v["query"].(map[string]any); ok {
			q = obj["query"]
		} else if s, ok := v["query"].(string); ok {
			q = s
		}
		query, _ := q.(string)
		for _, p := range checkExpr(exported, query) {
			t.Errorf("variable %s: query %s:\n%s", name, p, query)
		}
	}
	for _, name := range []string{"datasource", "target", "source"} {
		if !vars[name] {
			t.Errorf("templating has no variable %q", name)
		}
	}

	ids := map[float64]string{}
	var walk func(panels []map[string]any)
	walk = func(panels []map[string]any) {
		for _, p := range panels {
			title, _ := p["title"].(string)
			id, ok := p["id"].(float64)
			if !ok || id <= 0 {
				t.Errorf("panel %q has id %v, want a positive number", title, p["id"])
			} else if other, dup := ids[id]; dup {
				t.Errorf("panels %q and %q share id %v", other, title, id)
			} else {
				ids[id] = title
			}
			if _, ok := p["gridPos"].(map[string]any); !ok {
				t.Errorf("panel %q has no gridPos", title)
			}
			if p["type"] == "row" {
				nested, _ := p["panels"].([]any)
				walk(asObjects(nested))
				continue
			}
			targets, _ := p["targets"].([]any)
			if len(targets) == 0 {
				t.Errorf("panel %q has no query", title)
			}
			refIDs := map[string]bool{}
			for _, tgt := range asObjects(targets) {
				ref, _ := tgt["refId"].(string)
				if ref == "" || refIDs[ref] {
					t.Errorf("panel %q: refId %q is empty or repeated", title, ref)
				}
				refIDs[ref] = true
				if ds, _ := tgt["datasource"].(map[string]any); ds == nil || ds["uid"] != "${datasource}" {
					t.Errorf("panel %q query %s: datasource %v, want uid ${datasource}", title, ref, tgt["datasource"])
				}
				expr, _ := tgt["expr"].(string)
				for _, prob := range checkExpr(exported, expr) {
					t.Errorf("panel %q query %s %s:\n%s", title, ref, prob, expr)
				}
			}
		}
	}
	walk(dash.Panels)

	// Annotation queries too.
	var all map[string]any
	_ = json.Unmarshal(data, &all)
	annotations, _ := all["annotations"].(map[string]any)
	list, _ := annotations["list"].([]any)
	for _, a := range asObjects(list) {
		if expr, ok := a["expr"].(string); ok {
			for _, prob := range checkExpr(exported, expr) {
				t.Errorf("annotation %v: expr %s:\n%s", a["name"], prob, expr)
			}
		}
	}
}

func asObjects(list []any) []map[string]any {
	out := make([]map[string]any, 0, len(list))
	for _, v := range list {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}
