package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"
)

// completeValues makes shell completion (`opportunist completion`, and
// kubectl_complete-opportunist for the plugin) offer a flag's values.
func completeValues(cmd *cobra.Command, flag string, values []string) {
	if err := cmd.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp)); err != nil {
		panic(err) // a flag name mistyped here: a programming error
	}
}

// completeList makes shell completion offer the values of a comma-separated
// list flag (--strategy a,b): each value for the item after the last comma.
func completeList(cmd *cobra.Command, flag string, values []string) {
	complete := func(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		done, item := "", toComplete
		if i := strings.LastIndex(toComplete, ","); i >= 0 {
			done, item = toComplete[:i+1], toComplete[i+1:]
		}
		var out []string
		for _, v := range values {
			if strings.HasPrefix(v, item) && !slices.Contains(strings.Split(done, ","), v) {
				out = append(out, done+v)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	}
	if err := cmd.RegisterFlagCompletionFunc(flag, complete); err != nil {
		panic(err)
	}
}

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
