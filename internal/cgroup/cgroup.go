// Package cgroup reads what Linux control groups say of this process: the
// folder of its cgroup and the memory limit set on it. Everything returns
// "unknown" rather than an error where there is nothing to read (systems
// other than Linux, no cgroup file system mounted, AWS Lambda), because
// callers only use it to refine a default.
package cgroup

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Root is where the cgroup file systems are mounted.
const Root = "/sys/fs/cgroup"

// Dir returns the folder of this process's cgroup v2 under [Root], as
// /proc/self/cgroup names it ("" in a container's own cgroup namespace),
// and whether there is one.
func Dir() (string, bool) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", false
	}
	return Path(b, "")
}

// Path returns the path /proc/self/cgroup's content b gives the hierarchy
// of controller: "" for the cgroup v2 line ("0::/…"), a cgroup v1
// controller's name ("memory") for its line ("4:memory:/…", controllers
// may be listed together: "3:cpu,cpuacct:/…"). The root is "" rather than
// "/", so paths join with a folder by concatenation. A path that climbs
// ("..") is refused.
func Path(b []byte, controller string) (string, bool) {
	for line := range bytes.Lines(b) {
		line = bytes.TrimSpace(line)
		_, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		ctrls, dir, ok := bytes.Cut(rest, []byte(":"))
		if !ok || !matches(ctrls, controller) {
			continue
		}
		if len(dir) == 0 || dir[0] != '/' || bytes.Contains(dir, []byte("..")) {
			return "", false
		}
		return strings.TrimSuffix(string(dir), "/"), true
	}
	return "", false
}

// matches reports whether a line's controller list names controller ("":
// the v2 line, whose list is empty).
func matches(ctrls []byte, controller string) bool {
	if controller == "" {
		return len(ctrls) == 0
	}
	for c := range bytes.SplitSeq(ctrls, []byte(",")) {
		if string(c) == controller {
			return true
		}
	}
	return false
}

// MemoryLimit returns the memory limit of this process's cgroup in bytes:
// cgroup v2's memory.max, else cgroup v1's memory.limit_in_bytes; 0 when
// there is none or it cannot be read.
func MemoryLimit() int64 {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	if dir, ok := Path(b, ""); ok {
		if n := readLimit(Root + dir + "/memory.max"); n > 0 {
			return n
		}
	}
	if dir, ok := Path(b, "memory"); ok {
		return readLimit(Root + "/memory" + dir + "/memory.limit_in_bytes")
	}
	return 0
}

func readLimit(name string) int64 {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0
	}
	return ParseLimit(b)
}

// ParseLimit reads a memory limit file's content: a number of bytes, or
// "max" (cgroup v2) or a number near 2⁶³ (cgroup v1's way of saying none),
// both 0.
func ParseLimit(b []byte) int64 {
	s := string(bytes.TrimSpace(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0
	}
	return n
}
