package sync

import (
	"github.com/charmbracelet/bubbles/key"

	"github.com/loupe-cdp/loupe/tui/keys"
)

// KeyMap is the sync view's own bindings; navigation, esc (which cancels
// a running sync) and the globals come from the keys package.
type KeyMap struct {
	Sync    key.Binding
	SyncAll key.Binding
	Reload  key.Binding
}

// DefaultKeyMap is the default sync key map.
func DefaultKeyMap() *KeyMap {
	return &KeyMap{
		Sync:    key.NewBinding(key.WithKeys("enter", "s"), key.WithHelp("enter/s", "sync source")),
		SyncAll: key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "sync all")),
		Reload:  key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "reload status")),
	}
}

// Actions implements keys.Map. The names are unique across every view's
// map, since loupe.yaml's tui.keys is one namespace.
func (k *KeyMap) Actions() []keys.Action {
	return []keys.Action{
		{Name: "sync", Binding: &k.Sync}, {Name: "sync_all", Binding: &k.SyncAll},
		{Name: "sync_reload", Binding: &k.Reload},
	}
}
