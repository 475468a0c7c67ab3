// Package redisinfo reads the text that Redis's INFO command answers: the
// benchmarks measure Redis by its own counters.
package redisinfo

import (
	"strconv"
	"strings"
)

// Stats is what one INFO answer tells of Redis's work and memory.
type Stats struct {
	Calls map[string]float64 // per command ("evalsha", "set"), from commandstats
	Usec  map[string]float64 // µs spent in each command, from commandstats
	Used  float64            // used_memory, bytes
	CPU   float64            // seconds of the main thread, user and system
}

// Parse reads the sections of info it knows (commandstats, memory, cpu)
// and leaves the rest.
func Parse(info string) Stats {
	st := Stats{Calls: map[string]float64{}, Usec: map[string]float64{}}
	for line := range strings.SplitSeq(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "used_memory":
			st.Used, _ = strconv.ParseFloat(v, 64)
			continue
		case "used_cpu_user_main_thread", "used_cpu_sys_main_thread":
			n, _ := strconv.ParseFloat(v, 64)
			st.CPU += n
			continue
		}
		// cmdstat_evalsha:calls=5,usec=120,usec_per_call=24.00,...
		cmd, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			fk, fv, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseFloat(fv, 64)
			switch fk {
			case "calls":
				st.Calls[cmd] += n
			case "usec":
				st.Usec[cmd] += n
			}
		}
	}
	return st
}
