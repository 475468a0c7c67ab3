package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Notify is one place told when something breaks (a notify: entry).
type Notify struct {
	Name          string   `yaml:"name"`
	URL           string   `yaml:"url"`
	Kind          string   `yaml:"kind"`
	SigningSecret Secrets  `yaml:"signing_secret"`
	Events        []string `yaml:"events"`
	BacklogAge    Duration `yaml:"backlog_age"`
	MinInterval   Duration `yaml:"min_interval"`
}

// Notify kinds.
const (
	NotifySlack   = "slack"
	NotifyWebhook = "webhook"
)

// NotifyEvents are the event types a notify entry may list.
var NotifyEvents = []string{"breaker_open", "breaker_closed", "dead_letter", "target_paused", "store_unavailable", "backlog_age"}

// DefaultNotify returns the values a notify[] element starts from: a
// webhook with no events listed, which means every one.
func DefaultNotify() Notify {
	return Notify{
		Kind:        NotifyWebhook,
		BacklogAge:  Duration(10 * time.Minute),
		MinInterval: Duration(5 * time.Minute),
	}
}

// Tracing is where spans go. An empty OTLPEndpoint (and no
// OTEL_EXPORTER_OTLP_ENDPOINT) exports nothing; deliveries carry a
// traceparent either way.
type Tracing struct {
	OTLPEndpoint string  `yaml:"otlp_endpoint"`
	SampleRatio  float64 `yaml:"sample_ratio"`
}

func (v *validator) notify() {
	if r := v.c.Tracing.SampleRatio; r < 0 || r > 1 {
		v.add("tracing.sample_ratio", "must be from 0 to 1, such as 1.0 (every trace) or 0.1, got %g", r)
	}
	if e := v.c.Tracing.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			v.add("tracing.otlp_endpoint", "must be an http or https URL such as http://127.0.0.1:4318, got %q", redactURL(e))
		}
	}
	names := map[string]string{}
	for i, n := range v.c.Notify {
		p := fmt.Sprintf("notify[%d]", i)
		v.validName(p+".name", n.Name, names)
		u, err := url.Parse(n.URL)
		switch {
		case n.URL == "":
			v.add(p+".url", "is required, such as https://hooks.slack.com/services/${SLACK_PATH}")
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			v.add(p+".url", "must be an http or https URL such as https://hooks.slack.com/services/${SLACK_PATH}, got %q", redactURL(n.URL))
		}
		switch n.Kind {
		case NotifySlack:
			if len(n.SigningSecret) > 0 {
				v.add(p+".signing_secret", "only signs kind webhook; remove it or set kind: webhook")
			}
		case NotifyWebhook:
		default:
			v.add(p+".kind", "must be %q or %q, got %q", NotifySlack, NotifyWebhook, n.Kind)
		}
		for j, s := range n.SigningSecret {
			if err := checkWhsec(s); err != nil {
				v.add(p+".signing_secret", "secret %d: %v", j, err)
			}
		}
		for j, e := range n.Events {
			if !slices.Contains(NotifyEvents, e) {
				v.add(fmt.Sprintf("%s.events[%d]", p, j), "must be one of %s, got %q", strings.Join(NotifyEvents, ", "), e)
			}
		}
		if len(n.Events) == 0 || slices.Contains(n.Events, "backlog_age") {
			v.positive(p+".backlog_age", n.BacklogAge)
		}
		if n.MinInterval < 0 {
			v.add(p+".min_interval", "must not be negative, got %s", n.MinInterval)
		}
	}
	for i, t := range v.c.Targets {
		for j, name := range t.Notify {
			if _, ok := names[name]; !ok {
				v.add(fmt.Sprintf("targets[%d].notify[%d]", i, j), "names no notify entry: %q; the entries are named in notify[].name", name)
			}
		}
	}
}
