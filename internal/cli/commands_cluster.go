//go:build !nocluster

package cli

import "github.com/spf13/cobra"

// clusterCommands are the commands that talk to a cluster: they link the
// Kubernetes client, controller-runtime and the aggregated API server.
func clusterCommands() []*cobra.Command {
	return []*cobra.Command{newRunCommand(), newStatusCommand()}
}
