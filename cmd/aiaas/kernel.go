package main

import "github.com/aiaas/aiaas/nn"

// kernelName reports the matrix kernel in use.
func kernelName() string { return nn.Kernel() }
