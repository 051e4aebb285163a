package memblob_test

import (
	"testing"

	"github.com/aiaas/aiaas/modelstore/driver"
	"github.com/aiaas/aiaas/modelstore/drivertest"
	"github.com/aiaas/aiaas/modelstore/memblob"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T) driver.Bucket { return memblob.New() }, nil)
}
