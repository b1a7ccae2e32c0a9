// Command kubectl-sluice is sluice's kubectl plugin: on the PATH, it runs as
// `kubectl sluice`. The commands are in pkg/cli.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"sluice.dev/sluice/pkg/cli"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(cli.Execute(cli.NewRootCommand(streams)))
}
