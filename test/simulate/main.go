// Command simulate rolls seeded synthetic canaries out through the
// shifter's decision function (shift.Step) and through the threshold rule
// that Flagger applies, on the same traffic, and prints how often and how
// soon each promotes healthy canaries and rolls bad ones back: at 1, 10 and
// 100 requests per second reaching the service, with the default settings.
//
//	go run ./test/simulate [--rollouts 10000] [--seed 1]
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"sluice.dev/sluice/pkg/canary"
)

func main() {
	rollouts := flag.Int("rollouts", 10000, "rollouts per rule, traffic rate and canary")
	seed := flag.Uint64("seed", 0, "seed of the traffic")
	flag.Parse()
	start := time.Now()
	rows := Simulate(canary.BuiltinDefaults().Settings(), *seed, *rollouts, []float64{1, 10, 100}, []Model{Healthy, BadErrors, BadLatency})
	fmt.Printf("%d rollouts per row, seed %d, default settings; times are the median / p99 / max in intervals (%s)\n\n",
		*rollouts, *seed, time.Since(start).Round(time.Second))
	fmt.Print(Markdown(rows))
	if misses := Goals(rows, RuleSluice); len(misses) > 0 {
		fmt.Println("\nsluice misses its goals:")
		for _, m := range misses {
			fmt.Println("  " + m)
		}
		os.Exit(1)
	}
}
