// Command release builds sluice's release artefacts (see internal/release):
// the Makefile's build, image and release targets run it.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"sluice.dev/sluice/internal/release"
)

func main() {
	if err := command().Execute(); err != nil {
		os.Exit(1)
	}
}

func command() *cobra.Command {
	var version string
	root := &cobra.Command{
		Use:          "release",
		Short:        "Build sluice's binaries, image and release artefacts, reproducibly",
		SilenceUsage: true,
	}
	root.PersistentFlags().StringVar(&version, "version", "", "version to stamp (default: git describe --tags --match 'v[0-9]*' --always --dirty)")
	stamp := func(ctx context.Context) (release.Stamp, error) {
		v := version
		if v == "" {
			var err error
			if v, err = release.Describe(ctx, "."); err != nil {
				return release.Stamp{}, err
			}
		}
		return release.GitStamp(ctx, ".", v)
	}

	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version a build would carry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := stamp(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), s.Version)
			return nil
		},
	})

	var binOut string
	binaries := &cobra.Command{
		Use:   "binaries",
		Short: "Build every sluice binary for this machine, stamped, into --out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := stamp(cmd.Context())
			if err != nil {
				return err
			}
			return release.GoBuild(cmd.Context(), ".", release.HostPlatform(), s, binOut, release.Binaries()...)
		},
	}
	binaries.Flags().StringVar(&binOut, "out", "bin", "directory of the binaries")
	root.AddCommand(binaries)

	var repo, tag, imageOut string
	img := &cobra.Command{
		Use:   "image",
		Short: "Build the image for linux/amd64 and linux/arm64: an OCI layout and archives under --out",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := stamp(cmd.Context())
			if err != nil {
				return err
			}
			if repo == "" {
				ref, err := release.ChartImage(".")
				if err != nil {
					return err
				}
				repo = ref.Context().Name()
			}
			w, err := release.BuildImage(cmd.Context(), ".", release.ImageOptions{Repo: repo, Tag: tag, Stamp: s, Out: imageOut})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "image   %s\ndigest  %s\nlayout  %s\narchive %s\n", w.Ref, w.Digest, w.Layout, w.OCIArchive)
			for _, p := range release.ImagePlatforms {
				fmt.Fprintf(out, "docker  %s (%s)\n", w.DockerArchives[p.OS+"/"+p.Architecture], p)
			}
			return nil
		},
	}
	img.Flags().StringVar(&repo, "repo", "", "image repository (default: the chart's image.repository)")
	img.Flags().StringVar(&tag, "tag", "", "image tag (default: the version)")
	img.Flags().StringVar(&imageOut, "out", filepath.Join("dist", "image"), "directory of the layout and the archives")
	root.AddCommand(img)

	var distOut string
	dist := &cobra.Command{
		Use:   "dist",
		Short: "Build the binaries, the plugin's archives and krew manifest, and the image, into --out",
		Long: "Build the binaries, the plugin's archives and krew manifest, and the image, into --out.\n" +
			"The version must be the chart's appVersion: set both with make version-set.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := stamp(cmd.Context())
			if err != nil {
				return err
			}
			chart, err := release.ChartImage(".")
			if err != nil {
				return err
			}
			if !release.IsVersion(s.Version) || s.Version != chart.TagStr() {
				return fmt.Errorf("release %s: a release's version is a semantic version (v1.2.3) equal to the chart's appVersion, %s; tag the commit, or run make version-set VERSION=v1.2.3", s.Version, chart.TagStr())
			}
			krew, err := os.ReadFile(filepath.Join("deploy", "krew", "sluice.yaml"))
			if err != nil {
				return err
			}
			return release.Dist(cmd.Context(), ".", distOut, s, krew)
		},
	}
	dist.Flags().StringVar(&distOut, "out", "dist", "directory of the release")
	root.AddCommand(dist)

	root.AddCommand(&cobra.Command{
		Use:   "repack ARCHIVE.tgz",
		Short: "Rewrite a .tar.gz (the packaged chart) with every time the commit's, so that it is reproducible",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := stamp(cmd.Context())
			if err != nil {
				return err
			}
			mtime, err := s.Time()
			if err != nil {
				return err
			}
			return release.Repack(args[0], mtime)
		},
	})

	root.AddCommand(&cobra.Command{
		Use:   "checksums DIR",
		Short: "Write DIR/SHA256SUMS: the release's files and image archives",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sums, err := release.Checksums(args[0])
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(args[0], "SHA256SUMS"), sums, 0o644)
		},
	})
	return root
}
