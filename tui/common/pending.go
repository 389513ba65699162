package common

// ValueCount is one value of a trait and how many profiles have it.
// TODO(engine): becomes an alias of engine.ValueCount when it lands.
type ValueCount struct {
	Value string
	Count int
}
