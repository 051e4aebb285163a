package main

// kernelName reports the matrix kernel in use; nn/kernels replaces it.
func kernelName() string { return "gonum" }
