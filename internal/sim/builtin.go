package sim

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

//go:embed scenarios/*.yaml
var builtins embed.FS

// BuiltinNames lists the built-in scenarios.
func BuiltinNames() []string {
	entries, _ := fs.ReadDir(builtins, "scenarios")
	var out []string
	for _, e := range entries {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(out)
	return out
}

// Builtin returns a built-in scenario by name.
func Builtin(name string) (*Scenario, error) {
	file := path.Join("scenarios", name+".yaml")
	data, err := builtins.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("no built-in scenario %q (built in: %s)", name, strings.Join(BuiltinNames(), ", "))
	}
	return ParseScenario(name+".yaml", data, func(string) ([]byte, error) {
		return nil, fmt.Errorf("built-in scenarios name no trace")
	})
}
