//go:build nocluster

package cli

import "github.com/spf13/cobra"

// clusterCommands, in a build with the nocluster tag (make demo's
// bin/opportunist-demo), are stand-ins that say where the real ones are:
// leaving out their libraries makes the first build several times faster
// (README, Quick start).
func clusterCommands() []*cobra.Command {
	return []*cobra.Command{notInThisBuild("run"), notInThisBuild("status")}
}
