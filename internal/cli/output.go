package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// checkOutput says what is wrong with an -o/--output value, if anything:
// every command that prints takes one of table, wide, json, yaml (and
// simulate csv), each where it applies.
func checkOutput(flag, value string, allowed []string) []error {
	if slices.Contains(allowed, value) {
		return nil
	}
	return []error{fmt.Errorf("%s must be %s or %s, got %q", flag, strings.Join(allowed[:len(allowed)-1], ", "), allowed[len(allowed)-1], value)}
}

// writeStructured prints v as indented JSON, or as YAML converted from that
// JSON so that the field names are the same.
func writeStructured(w io.Writer, output string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if output == "yaml" {
		if data, err = yaml.JSONToYAML(data); err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
