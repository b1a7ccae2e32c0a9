#!/usr/bin/env bash
# Builds every binary that sluice's tests and demo run (etcd, the Kubernetes
# control plane, kubectl, kwok, Prometheus, helm, Istio's validation) from the
# Go modules pinned in the folders beside this script, into a cache outside the
# work tree; and controller-gen and staticcheck, for make generate and make lint.
#
# Each folder is one wrapper module: its go.mod pins the version, tools.go names
# the packages (in istio, main.go is a program of its own). A folder is rebuilt
# only when its pinned files or its source change, so the first run takes
# several minutes and later runs take a second.
#
# Usage: test/tools/install.sh [--print-bin-dir]
# Env:   SLUICE_TOOLS  cache folder (default ${XDG_CACHE_HOME:-~/.cache}/sluice/tools)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SLUICE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/tools}
bin="$cache/bin"

if [[ "${1:-}" == "--print-bin-dir" ]]; then
	echo "$bin"
	exit 0
fi

mkdir -p "$bin" "$cache/stamps"

# build NAME BINARIES ESTIMATE -- GO-BUILD-ARGS...
# Builds the wrapper module in $here/NAME unless its stamp (a hash of its pinned
# files, its Go source and the build arguments) matches and every binary is
# present.
build() {
	local name=$1 binaries=$2 estimate=$3
	shift 4
	local dir="$here/$name"
	# Most folders hold only tools.go; one (istio) holds a program of its own,
	# whose every change must rebuild it. Tests are not part of the binary.
	local sources=() f
	for f in "$dir"/*.go; do
		[[ $f == *_test.go ]] || sources+=("$f")
	done
	local stamp
	stamp=$(cat "$dir/go.mod" "$dir/go.sum" "${sources[@]}" <(go env GOVERSION) <(printf '%s\n' "$@") | sha256sum | cut -c1-16)
	local missing=0 b
	for b in $binaries; do
		[[ -x "$bin/$b" ]] || missing=1
	done
	if [[ $missing == 0 && "$(cat "$cache/stamps/$name" 2>/dev/null)" == "$stamp" ]]; then
		return 0
	fi

	echo "==> building $binaries (test/tools/$name; first build takes about $estimate on 2 cores)"
	local start=$SECONDS
	# A heartbeat, so that a long first build does not look hung.
	(while sleep 30; do echo "    ... still building $name, $((SECONDS - start))s so far"; done) &
	local ticker=$!
	local rc=0
	# One binary is named after its entry (etcd's main package is its module
	# root, server/v3); several keep their package names.
	local out="$bin/"
	[[ $binaries == *" "* ]] || out="$bin/$binaries"
	(cd "$dir" && go build -o "$out" "$@") || rc=$?
	kill "$ticker" 2>/dev/null || true
	wait "$ticker" 2>/dev/null || true
	if [[ $rc != 0 ]]; then
		echo "!!! building $name failed (exit $rc)" >&2
		exit "$rc"
	fi
	echo "$stamp" >"$cache/stamps/$name"
	echo "    built $name in $((SECONDS - start))s"
}

kube_version=$(cd "$here/kube" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
kube_minor=$(echo "$kube_version" | cut -d. -f2)
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$kube_minor -X k8s.io/component-base/version.gitTreeState=clean"

build etcd "etcd" "1 minute" -- -ldflags "-s -w" go.etcd.io/etcd/server/v3
build kube "kube-apiserver kube-controller-manager kube-scheduler kubectl" "8 to 14 minutes" -- \
	-ldflags "$kube_ldflags" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
build kwok "kwok" "1 minute" -- -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok
# remove_all_sd leaves out the cloud service discoveries that tests never use.
build prometheus "prometheus" "2 minutes" -- -tags remove_all_sd -ldflags "-s -w" \
	github.com/prometheus/prometheus/cmd/prometheus
build helm "helm" "1 minute" -- -ldflags "-s -w" helm.sh/helm/v3/cmd/helm
build codegen "controller-gen" "1 minute" -- -ldflags "-s -w" sigs.k8s.io/controller-tools/cmd/controller-gen
build lint "staticcheck" "1 minute" -- -ldflags "-s -w" honnef.co/go/tools/cmd/staticcheck
# Istio's own validation (istiod's webhook code), which refuses more than the
# CRDs' schemas; a program of this folder's, since istio.io/istio would pull
# about 100 modules and older Kubernetes ones into the main module.
build istio "istio-validate" "5 to 10 minutes" -- -ldflags "-s -w" .

# kwok alone ships no default behaviour: kwokctl hands it stage files. Use the
# same ones, from the pinned kwok module, so that fake nodes become Ready and
# Pods run, become Ready and are deleted the way a kubelet would.
kwok_dir=$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
stages="$kwok_dir/kustomize/stage"
for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
	pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
	cat "$stages/$f"
	echo "---"
done >"$cache/kwok-stages.yaml.tmp"
mv "$cache/kwok-stages.yaml.tmp" "$cache/kwok-stages.yaml"
