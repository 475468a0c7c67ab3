package bench

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
)

// metricSample is one line of a Prometheus text exposition.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// scrape reads the relay's /metrics.
func scrape(admin string) ([]metricSample, error) {
	resp, err := probeClient.Get("http://" + admin + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	var out []metricSample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		var s metricSample
		head, val, ok := cutLast(line, " ")
		if !ok {
			continue
		}
		if s.value, err = strconv.ParseFloat(val, 64); err != nil {
			continue
		}
		name, labels, hasLabels := strings.Cut(head, "{")
		s.name = name
		if hasLabels {
			s.labels = map[string]string{}
			for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
				k, v, _ := strings.Cut(kv, "=")
				s.labels[k] = strings.Trim(v, `"`)
			}
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// metricSum adds the samples named name whose labels include want (in
// pairs: key, value).
func metricSum(ms []metricSample, name string, want ...string) float64 {
	var sum float64
next:
	for _, m := range ms {
		if m.name != name {
			continue
		}
		for i := 0; i+1 < len(want); i += 2 {
			if m.labels[want[i]] != want[i+1] {
				continue next
			}
		}
		sum += m.value
	}
	return sum
}

// peakRSS reads this process's resident high-water mark (VmHWM), in
// bytes; 0 where /proc is missing.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) == 2 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// procStatus reads VmRSS and RssAnon of a process, in bytes, from
// /proc/PID/status (Linux only; 0 elsewhere).
func procStatus(pid string) (rss, anon int64) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "RssAnon":
			anon = n << 10
		}
	}
	return rss, anon
}
