//go:build unix && !linux

package plugins

// backPages backs b's pages with memory by touching each.
func backPages(b []byte) error {
	touchPages(b)
	return nil
}
