package platform

import "time"

// SetUploadClock moves the clock of upload expiry and lowers the size
// above which a staged artifact is checked as it streams; restore undoes
// both. Tests that call it must not run in parallel.
func SetUploadClock(now func() time.Time, streamAbove int64) (restore func()) {
	oldNow, oldWhole := uploadNow, describeWhole
	uploadNow, describeWhole = now, streamAbove
	return func() { uploadNow, describeWhole = oldNow, oldWhole }
}
