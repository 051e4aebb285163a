package offheap

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// testBlock is the size of the block the mapping test allocates.
const testBlock = 64 << 20

// rssAnon returns the process's resident anonymous memory (RssAnon in
// /proc/self/status), in bytes.
func rssAnon() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kb << 10
		}
	}
	return 0
}
