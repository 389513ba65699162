package digestmap

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on amd64 and arm64.
const hugePage = 2 << 20

// adviseHugePages asks the kernel to back the table's memory with
// transparent huge pages (madvise MADV_HUGEPAGE). Many Linux systems,
// this project's machine among them, give them only where a program asks
// ("madvise" mode), and the Go runtime does not ask for its heap. A lookup lands on a random slot of
// a table hundreds of MB large: with 4 KB pages nearly every one also
// misses the TLB and walks the page tables, and filling the table faults
// each page in separately. With 2 MB pages the whole table's translations
// fit in the TLB. Only whole huge pages inside the table are advised, so
// nothing else of the heap is touched; the advice is a hint, and an error
// (an older kernel, huge pages off) changes nothing but the speed.
func adviseHugePages[V any](slots []slot[V]) {
	size := uintptr(len(slots)) * unsafe.Sizeof(slot[V]{})
	if size < 2*hugePage {
		return
	}
	if beg, end := wholeHugePages(uintptr(unsafe.Pointer(unsafe.SliceData(slots))), size); beg < end {
		syscall.Syscall(syscall.SYS_MADVISE, beg, end-beg, syscall.MADV_HUGEPAGE)
	}
}

// wholeHugePages is the range of the huge pages that lie wholly inside
// [start, start+size); empty (beg >= end) when there are none.
func wholeHugePages(start, size uintptr) (beg, end uintptr) {
	return (start + hugePage - 1) &^ (hugePage - 1), (start + size) &^ (hugePage - 1)
}
