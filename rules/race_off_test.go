//go:build !race

package rules

// raceEnabled reports a -race build, which runs the VM path about ten
// times slower.
const raceEnabled = false
