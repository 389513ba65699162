package profiles

import (
	"github.com/charmbracelet/bubbles/key"

	"github.com/loupe-cdp/loupe/tui/keys"
)

// KeyMap is the profiles view's own bindings; navigation and globals come
// from the keys package.
type KeyMap struct {
	Search    key.Binding
	Filter    key.Binding
	Sort      key.Binding
	Open      key.Binding
	Frequency key.Binding
	Reveal    key.Binding
}

// DefaultKeyMap is the default profiles key map.
func DefaultKeyMap() *KeyMap {
	return &KeyMap{
		Search:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "search")),
		Filter:    key.NewBinding(key.WithKeys("f"), key.WithHelp("f", "filter")),
		Sort:      key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sort")),
		Open:      key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Frequency: key.NewBinding(key.WithKeys("F"), key.WithHelp("F", "frequency")),
		Reveal:    key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "reveal PII")),
	}
}

// Actions implements keys.Map.
func (k *KeyMap) Actions() []keys.Action {
	return []keys.Action{
		{Name: "search", Binding: &k.Search}, {Name: "filter", Binding: &k.Filter},
		{Name: "sort", Binding: &k.Sort}, {Name: "open", Binding: &k.Open},
		{Name: "frequency", Binding: &k.Frequency}, {Name: "reveal", Binding: &k.Reveal},
	}
}
