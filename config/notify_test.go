package config

import "testing"

func TestValidateNotify(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"kind", okAll + "notify:\n  - name: ops\n    url: https://hooks.slack.com/x\n    kind: email # <-\n",
			`notify[0].kind: must be "slack" or "webhook", got "email"`, 0},
		{"event", okAll + "notify:\n  - name: ops\n    url: https://hooks.slack.com/x\n    events: [breaker_open, breaker_broke] # <-\n",
			`notify[0].events[1]: must be one of breaker_open,`, 0},
		{"url", okAll + "notify:\n  - name: ops\n    url: hooks.slack.com # <-\n",
			`notify[0].url: must be an http or https URL`, 0},
		{"secret", okAll + "notify:\n  - name: ops\n    url: https://a.internal/x\n    signing_secret: nope # <-\n",
			`notify[0].signing_secret: secret 0: must be a Standard Webhooks secret`, 0},
		{"slack signed", okAll + "notify:\n  - name: ops\n    url: https://a.internal/x\n    kind: slack\n    signing_secret: whsec_c2Vjb25kLXNlY3JldA== # <-\n",
			`notify[0].signing_secret: only signs kind webhook`, 0},
		{"backlog", okAll + "notify:\n  - name: ops\n    url: https://a.internal/x\n    backlog_age: 0s # <-\n",
			`notify[0].backlog_age: must be a positive duration`, 0},
		{"duplicate", okAll + "notify:\n  - {name: ops, url: https://a.internal/x}\n  - {name: ops, url: https://a.internal/y} # <-\n",
			`notify[1].name: duplicate name "ops"`, 0},
		{"sample ratio", okAll + "tracing:\n  sample_ratio: 1.5 # <-\n", `tracing.sample_ratio: must be from 0 to 1`, 0},
		{"otlp endpoint", okAll + "tracing:\n  otlp_endpoint: 127.0.0.1:4318 # <-\n", `tracing.otlp_endpoint: must be an http or https URL`, 0},
		{"target names", okSources + okRoutes + "targets:\n  - name: media\n    url: http://127.0.0.1:9/x\n    notify: [nobody] # <-\n",
			`targets[0].notify[0]: names no notify entry: "nobody"`, 0},
	})
	c, err := Parse([]byte(okAll+"notify:\n  - {name: ops, url: https://a.internal/x, events: [dead_letter], min_interval: 0s}\n"), "ok.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of a valid notify entry = %v", err)
	}
	if n := c.Notify[0]; n.Kind != NotifyWebhook || n.BacklogAge.D().String() != "10m0s" || n.MinInterval != 0 {
		t.Errorf("notify[0] = %+v, want kind webhook, backlog_age 10m and min_interval 0 as written", n)
	}
}
