// Package cli holds the opportunist subcommands: each an options struct with
// defaults, AddFlags and Validate, and a run function doing the I/O.
package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
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
		return fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())
	})
	root.AddCommand(newRunCommand(), newStatusCommand(), newVersionCommand())
	root.AddCommand(newSimulateCommand(), newDemoCommand())
	return root
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

// noArgs rejects positional arguments with a clear message.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
