//go:build race

package onnx

// networksRace: TestNetworks runs one export of each network under the
// race detector.
const networksRace = true
