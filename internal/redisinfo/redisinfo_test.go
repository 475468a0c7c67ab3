package redisinfo

import "testing"

func TestParse(t *testing.T) {
	info := "# Commandstats\r\n" +
		"cmdstat_evalsha:calls=5,usec=120,usec_per_call=24.00,rejected_calls=0,failed_calls=1\r\n" +
		"cmdstat_set:calls=10,usec=30,usec_per_call=3.00\r\n" +
		"# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n" +
		"# CPU\r\nused_cpu_sys_main_thread:1.5\r\nused_cpu_user_main_thread:2.25\r\nused_cpu_sys:9\r\n"
	st := Parse(info)
	if st.Calls["evalsha"] != 5 || st.Usec["evalsha"] != 120 || st.Calls["set"] != 10 || st.Usec["set"] != 30 {
		t.Errorf("commandstats: calls %v, usec %v", st.Calls, st.Usec)
	}
	if len(st.Calls) != 2 {
		t.Errorf("calls of %d commands, want 2: %v", len(st.Calls), st.Calls)
	}
	if st.Used != 1048576 || st.CPU != 3.75 {
		t.Errorf("used_memory %v, main-thread CPU %v; want 1048576 and 3.75", st.Used, st.CPU)
	}
}
