// Package buildinfo exports which build of sluice a process runs, as the
// metric sluice_build_info{version,revision,goversion} = 1, so that a
// dashboard or an alert can tell the versions a cluster runs. It stays out
// of pkg/version, which the plugin and gencert use without Prometheus.
package buildinfo

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"sluice.dev/sluice/pkg/version"
)

// Collector is the sluice_build_info gauge of the running build.
func Collector() prometheus.Collector {
	info := version.Get()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "sluice_build_info",
		Help:        "The build of sluice this process runs (its version, VCS revision and Go toolchain); always 1.",
		ConstLabels: prometheus.Labels{"version": info.Version, "revision": info.Commit, "goversion": info.Go},
	}, func() float64 { return 1 })
}

// Register adds the Collector to reg once: a second registration, as a
// process that starts a server twice makes, is no error.
func Register(reg prometheus.Registerer) error {
	if err := reg.Register(Collector()); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
		return err
	}
	return nil
}
