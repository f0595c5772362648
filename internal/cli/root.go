// Package cli holds the opportunist subcommands: each an options struct with
// defaults, AddFlags and Validate, and a run function doing the I/O.
package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/opportunist/opportunist/internal/version"
)

// NewRoot returns the opportunist command tree. argv0 lets the same binary
// present itself as a kubectl plugin when installed as kubectl-opportunist.
func NewRoot(argv0 string) *cobra.Command {
	root := &cobra.Command{
		Use:   "opportunist",
		Short: "Keep a Kubernetes cluster filled with preemptible work, and yield at once to paying work",
		Long: `opportunist computes, node by node, how much room a cluster really has, scales
opportunistic workloads (batch, transcoding, CI runners, ...) to fill it up to a
target, and gives the room back the moment paid pods need it.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	if strings.HasPrefix(filepath.Base(argv0), "kubectl-") {
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl opportunist"}
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", flagError(err), c.CommandPath())
	})
	// --version prints what `opportunist version` prints; declared here so
	// cobra does not add a -v shorthand.
	root.Flags().Bool("version", false, "print the version of this build, as 'opportunist version' does")
	root.Version = version.Get().Version
	root.SetVersionTemplate(strings.ReplaceAll(versionLine(), "{", "{{`{`}}") + "\n")
	root.AddCommand(newVersionCommand(), newSimulateCommand(), newDemoCommand())
	root.AddCommand(clusterCommands()...)
	return root
}

// flagError rewrites a flag value that does not parse in the user's terms:
// `--speed "abc" is not a number`, not strconv's "parsing "abc": invalid syntax".
func flagError(err error) error {
	var bad *pflag.InvalidValueError
	if !errors.As(err, &bad) {
		return err
	}
	name := "--" + bad.GetFlag().Name
	var num *strconv.NumError
	switch {
	case errors.As(err, &num) && errors.Is(num.Err, strconv.ErrRange):
		return fmt.Errorf("%s %q is out of range", name, bad.GetValue())
	case errors.As(err, &num):
		switch typ := bad.GetFlag().Value.Type(); {
		case typ == "bool":
			return fmt.Errorf("%s %q is not true or false", name, bad.GetValue())
		case strings.HasPrefix(typ, "float"):
			return fmt.Errorf("%s %q is not a number (e.g. 10 or 2.5)", name, bad.GetValue())
		case strings.HasPrefix(typ, "uint"):
			return fmt.Errorf("%s %q is not a whole number, 0 or more", name, bad.GetValue())
		default:
			return fmt.Errorf("%s %q is not a whole number", name, bad.GetValue())
		}
	case bad.GetFlag().Value.Type() == "duration":
		return fmt.Errorf("%s %q is not a duration (e.g. 30s, 5m, 1h30m)", name, bad.GetValue())
	}
	return err
}

// validated turns an options struct's Validate() into one error naming every problem.
func validated(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New("invalid flags: " + strings.Join(msgs, "; "))
}

// notInThisBuild stands in for a cluster command that a build with the
// nocluster tag leaves out (make demo's): help still lists it, and running
// it, with any flags, says how to get the binary that has it.
func notInThisBuild(name string) *cobra.Command {
	return &cobra.Command{
		Use:                name,
		Short:              "Not in this demo build: bin/opportunist has it (make build)",
		DisableFlagParsing: true, // --help or any flag of the real command gets the same answer
		RunE: func(cmd *cobra.Command, _ []string) error {
			return fmt.Errorf("%s is not in this build: make demo builds bin/opportunist-demo with demo, simulate and version only, "+
				"without the Kubernetes client and API server libraries, to build fast; run make build, then bin/opportunist %s", cmd.CommandPath(), name)
		},
	}
}

// noArgs rejects positional arguments with a clear message.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
