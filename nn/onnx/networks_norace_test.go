//go:build !race

package onnx

const networksRace = false
