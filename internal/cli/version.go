package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/opportunist/opportunist/internal/version"
)

func newVersionCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version of this build",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := version.Get()
			switch output {
			case "":
				fmt.Fprintln(cmd.OutOrStdout(), versionLine())
			case "json", "yaml":
				return writeStructured(cmd.OutOrStdout(), output, info)
			default:
				return fmt.Errorf("--output must be json or yaml, or empty for one line, got %q", output)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml, or empty for one line")
	completeValues(cmd, "output", []string{"json", "yaml"})
	return cmd
}

// versionLine is the one line `opportunist version` and `opportunist --version` print.
func versionLine() string {
	info := version.Get()
	return fmt.Sprintf("opportunist %s (revision %s, %s, %s)", info.Version, orUnknown(info.Revision), info.GoVersion, info.Platform)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
