package kernels

import "fmt"

// blockSizes are the cache-blocking parameters of the Goto/BLIS loop nest.
type blockSizes struct {
	kc, mc, nc int // depth of a packed panel; rows of A per L2 block; columns of B per L3 block
	l1d, l2    int // cache sizes they were derived from, in bytes
}

func (b blockSizes) String() string {
	return fmt.Sprintf("kc=%d mc=%d nc=%d l1d=%dK l2=%dK", b.kc, b.mc, b.nc, b.l1d>>10, b.l2>>10)
}

// Fallback cache sizes when the CPU does not say (old CPUs, some VMs): the
// smallest common values, so blocks still fit on any recent core.
const (
	defaultL1D = 32 << 10
	defaultL2  = 256 << 10
)

// newBlocking sizes the blocks for a kernel of mr×nr: one kc×nr panel of B
// uses half of L1 (the other half streams the A panel and C), and one mc×kc
// block of A uses half of L2. nc bounds the packed B buffer; L3 is shared
// between cores and tenants, so it is not sized from it.
func newBlocking(mr, nr, l1d, l2 int) blockSizes {
	if l1d <= 0 {
		l1d = defaultL1D
	}
	if l2 <= 0 {
		l2 = defaultL2
	}
	kc := l1d / 2 / (nr * 4)
	kc = max(64, min(512, kc&^7))
	mc := l2 / 2 / (kc * 4)
	mc = max(mr, min(1024, mc/mr*mr))
	nc := max(nr, 4096/nr*nr)
	return blockSizes{kc: kc, mc: mc, nc: nc, l1d: l1d, l2: l2}
}

// blocking returns the block sizes of k.
func blocking(k *kernel) blockSizes { return k.blk }
