package digestmap

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// TestTablesAskForHugePages checks that a table of several huge pages
// carries the kernel's huge page advice ("hg" in its mapping's VmFlags).
// The mapping may reach past the table: the heap keeps the advice of
// tables freed before.
func TestTablesAskForHugePages(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("this kernel has no transparent huge pages:", err)
	}
	var m Map[uint64]
	m.Grow(1 << 20) // 2M slots of 24 bytes: 48 MB
	start := uintptr(unsafe.Pointer(unsafe.SliceData(m.slots)))
	end := start + uintptr(len(m.slots))*unsafe.Sizeof(m.slots[0])
	mid := (start + end) / 2
	flags, lo, hi := vmFlagsAt(t, mid)
	if !strings.Contains(" "+flags+" ", " hg ") {
		t.Fatalf("the table's mapping [%#x, %#x) has VmFlags %q, want hg", lo, hi, flags)
	}
	if m.Cap() < 1<<20 {
		t.Fatalf("Cap %d after Grow(1<<20)", m.Cap())
	}
}

func TestWholeHugePages(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct{ start, size, beg, end uintptr }{
		{0, 4 * mb, 0, 4 * mb},                // aligned
		{1 * mb, 4 * mb, 2 * mb, 4 * mb},      // one whole page inside
		{1 * mb, 2 * mb, 2 * mb, 2 * mb},      // none
		{2*mb + 8, 6*mb - 16, 4 * mb, 6 * mb}, // both ends cut
		{0x7f0000000000, 64 * mb, 0x7f0000000000, 0x7f0004000000},
	} {
		beg, end := wholeHugePages(c.start, c.size)
		if beg != c.beg || end != c.end {
			t.Errorf("wholeHugePages(%#x, %#x) = [%#x, %#x), want [%#x, %#x)", c.start, c.size, beg, end, c.beg, c.end)
		}
	}
}

// vmFlagsAt returns the VmFlags of the mapping holding addr, and its range.
func vmFlagsAt(t *testing.T, addr uintptr) (flags string, lo, hi uintptr) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if r, _, ok := strings.Cut(line, " "); ok && strings.Contains(r, "-") && !strings.HasSuffix(r, ":") {
			a, b, _ := strings.Cut(r, "-")
			x, err1 := strconv.ParseUint(a, 16, 64)
			y, err2 := strconv.ParseUint(b, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(x) <= addr && addr < uintptr(y)
			if in {
				lo, hi = uintptr(x), uintptr(y)
			}
			continue
		}
		if in && strings.HasPrefix(line, "VmFlags:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmFlags:")), lo, hi
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return "", 0, 0
}
