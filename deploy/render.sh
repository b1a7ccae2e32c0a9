#!/usr/bin/env bash
# Prints deploy/install.yaml: the chart in deploy/chart rendered with its
# defaults, its CRD and the sluice-system Namespace, for kubectl apply.
# make manifests writes it; test/generate checks that the file is fresh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
helm=$("$here/../test/tools/install.sh" --print-bin-dir)/helm
echo "# sluice, rendered from deploy/chart by make manifests; do not edit."
echo "# Install: kubectl apply -f deploy/install.yaml"
# --kube-version: helm template knows no cluster, and the chart needs 1.30 or later.
"$helm" template sluice "$here/chart" --namespace sluice-system --include-crds \
	--set createNamespace=true --kube-version 1.35.0
