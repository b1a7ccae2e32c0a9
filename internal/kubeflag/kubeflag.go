// Package kubeflag holds command-line flag values that name Kubernetes
// objects, checked as the flags are parsed, so that a mistake shows when a
// binary starts rather than when the flag is first used.
package kubeflag

import (
	"fmt"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
)

// NamespacedName is a pflag.Value of the form namespace/name.
type NamespacedName struct {
	types.NamespacedName
	// Example is a valid value, which the error for a wrong one shows.
	Example string
}

// Set parses value.
func (n *NamespacedName) Set(value string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(value)
	if err != nil || ns == "" || name == "" {
		return fmt.Errorf("want namespace/name, such as %s", n.Example)
	}
	n.Namespace, n.Name = ns, name
	return nil
}

// String is the value as namespace/name, or "" when unset.
func (n *NamespacedName) String() string {
	if n.Name == "" {
		return ""
	}
	return n.NamespacedName.String()
}

// Type names the form of the value in --help.
func (n *NamespacedName) Type() string { return "namespace/name" }
