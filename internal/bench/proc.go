package bench

import (
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
)

// procStatus reads the sizes in /proc/PID/status ("self": this process),
// in bytes by field, such as VmRSS, RssAnon and VmHWM (the resident
// high-water mark). It is empty where /proc is missing (Linux only).
func procStatus(pid string) map[string]int64 {
	sizes := map[string]int64{}
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return sizes
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
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			sizes[k] = n << 10
		}
	}
	return sizes
}

// openFiles counts the files and sockets a process holds; 0 where /proc
// is missing.
func openFiles(pid string) int {
	fds, _ := os.ReadDir("/proc/" + pid + "/fd")
	return len(fds)
}

// loadAvg returns the machine's load averages over 1, 5 and 15 minutes
// as /proc/loadavg has them; "" where it is missing.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// startCPUProfile writes a CPU profile of this process to path ("" for
// none) until stop, which may be called more than once.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			f.Close()
		})
	}, nil
}
