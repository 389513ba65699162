//go:build !linux

package digestmap

// adviseHugePages does nothing where the kernel has no madvise hint for
// transparent huge pages.
func adviseHugePages[V any](slots []slot[V]) {}
