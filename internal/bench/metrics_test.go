package bench

import (
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// scrape reads what a real registry exposes, and sum picks samples by
// name and labels, whatever the metric's type.
func TestScrapeSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	depth := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hooxrelay_queue_depth", Help: "h"}, []string{"target", "state"})
	total := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hooxrelay_deliveries_total", Help: "h"}, []string{"target"})
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "hooxrelay_latency_seconds", Help: "h"})
	reg.MustRegister(depth, total, lat)
	depth.WithLabelValues("a", "pending").Set(3)
	depth.WithLabelValues("b", "pending").Set(4)
	depth.WithLabelValues("a", "dead").Set(5)
	total.WithLabelValues("a").Add(7)
	lat.Observe(0.1)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	m, err := scrape(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	for _, tc := range []struct {
		name string
		want []string
		sum  float64
	}{
		{"hooxrelay_queue_depth", nil, 12},
		{"hooxrelay_queue_depth", []string{"state", "pending"}, 7},
		{"hooxrelay_queue_depth", []string{"target", "a", "state", "dead"}, 5},
		{"hooxrelay_queue_depth", []string{"target", "c"}, 0},
		{"hooxrelay_deliveries_total", []string{"target", "a"}, 7},
		{"no_such_metric", nil, 0},
	} {
		if got := m.sum(tc.name, tc.want...); got != tc.sum {
			t.Errorf("sum(%q, %q) = %g, want %g", tc.name, tc.want, got, tc.sum)
		}
	}
}

func TestScrapeRefusesAnError(t *testing.T) {
	srv := httptest.NewServer(nil) // 404 for everything
	defer srv.Close()
	if m, err := scrape(strings.TrimPrefix(srv.URL, "http://")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("scrape of a 404 = %v, %v; want an error naming the status", m, err)
	}
}

func TestProcStatus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	s := procStatus("self")
	for _, k := range []string{"VmRSS", "RssAnon", "VmHWM"} {
		if s[k] <= 0 || s[k]%1024 != 0 {
			t.Errorf("procStatus(self)[%q] = %d, want a positive number of bytes (kB × 1024)", k, s[k])
		}
	}
	if s["VmHWM"] < s["VmRSS"] {
		t.Errorf("VmHWM %d < VmRSS %d: the high-water mark is below the current size", s["VmHWM"], s["VmRSS"])
	}
	if n := openFiles("self"); n < 3 {
		t.Errorf("openFiles(self) = %d, want at least stdin, stdout and stderr", n)
	}
	if s := procStatus("no-such-pid"); len(s) != 0 {
		t.Errorf("procStatus of a missing process = %v, want nothing", s)
	}
}
