package cgroup

import "testing"

func TestPath(t *testing.T) {
	for _, tc := range []struct{ in, controller, want string }{
		{"0::/\n", "", ""},
		{"12:cpu:/x\n0::/system.slice/aiaas.service\n", "", "/system.slice/aiaas.service"},
		{"0::/a/b/\n", "", "/a/b"},
		{"1:cpu:/x\n", "", "-"},
		{"0::/../etc\n", "", "-"},
		{"0::relative\n", "", "-"},
		{"", "", "-"},
		{"garbage\n", "", "-"},
		// cgroup v1 lines, as this project's CI machine has them.
		{"4:memory:/process_api/6c0e\n0::/\n", "memory", "/process_api/6c0e"},
		{"3:cpu,cpuacct:/x\n", "cpuacct", "/x"},
		{"3:cpu,cpuacct:/x\n", "cpu", "/x"},
		{"3:cpu,cpuacct:/x\n", "memory", "-"},
		{"4:memory:/\n", "memory", ""},
		{"4:memory:/a/../..\n", "memory", "-"},
		// The v2 line is not a v1 controller's, nor the reverse.
		{"0::/x\n", "memory", "-"},
		{"4:memory:/x\n", "", "-"},
	} {
		got, ok := Path([]byte(tc.in), tc.controller)
		if !ok {
			got = "-"
		}
		if got != tc.want {
			t.Errorf("Path(%q, %q) = %q, want %q", tc.in, tc.controller, got, tc.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"536870912\n", 512 << 20},
		{"max\n", 0},
		{"9223372036854771712\n", 0}, // cgroup v1's "no limit"
		{"", 0},
		{"-1", 0},
		{"12abc", 0},
	} {
		if got := ParseLimit([]byte(tc.in)); got != tc.want {
			t.Errorf("ParseLimit(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// This machine's, whatever it is: the functions must not fail where the
// files exist, and must say "none" rather than a nonsense limit.
func TestThisMachine(t *testing.T) {
	if dir, ok := Dir(); ok && dir != "" && dir[0] != '/' {
		t.Errorf("Dir() = %q", dir)
	}
	if n := MemoryLimit(); n < 0 || n >= 1<<62 {
		t.Errorf("MemoryLimit() = %d", n)
	}
}
