package bench

import (
	"fmt"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metrics are the metric families of one scrape, by name.
type metrics map[string]*dto.MetricFamily

// scrape reads the relay's /metrics.
func scrape(admin string) (metrics, error) {
	resp, err := probeClient.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	return mfs, nil
}

// sum adds the values of the gauges, counters and untyped samples named
// name whose labels include want (in pairs: name, value).
func (m metrics) sum(name string, want ...string) float64 {
	mf := m[name]
	if mf == nil {
		return 0
	}
	var total float64
	for _, s := range mf.GetMetric() {
		if hasLabels(s, want) {
			total += s.GetGauge().GetValue() + s.GetCounter().GetValue() + s.GetUntyped().GetValue()
		}
	}
	return total
}

func hasLabels(s *dto.Metric, want []string) bool {
next:
	for i := 0; i+1 < len(want); i += 2 {
		for _, l := range s.GetLabel() {
			if l.GetName() == want[i] && l.GetValue() == want[i+1] {
				continue next
			}
		}
		return false
	}
	return true
}
