// Package routing is how sluice sends a Deployment's traffic to its primary
// and its canary: the routing the shifter decides, in no routing API's
// terms, and the Router interface that each routing API (Istio's
// VirtualService, the Gateway API's HTTPRoute) implements.
//
// Routers are pure: they build route objects, read what a route sends, and
// compute the smallest patch from one routing to another. The shifter does
// the reads and writes, so that every router shares its cache, its
// bookkeeping of its own writes, and its conflict reports.
package routing

import (
	"fmt"
	"net/http"
	"reflect"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"sluice.dev/sluice/pkg/canary"
)

// Routing is the traffic of one Deployment as the shifter wants it.
type Routing struct {
	// CanaryWeight is the percentage of the traffic sent to the canary; the
	// rest goes to the primary.
	CanaryWeight int32
	// Match sends the requests that meet any of these to the canary,
	// whatever the weight: an A/B test.
	Match []canary.RequestMatch
	// MirrorPercent is the percentage of the requests copied to the
	// canary, whose answers are discarded; 0 for none.
	MirrorPercent int32
	// Sticky keeps the clients that got the canary once on it; nil for
	// none.
	Sticky *Sticky
}

// Equal reports whether r and o send the same traffic to the same places.
func (r Routing) Equal(o Routing) bool {
	return r.CanaryWeight == o.CanaryWeight && r.MirrorPercent == o.MirrorPercent &&
		(len(r.Match) == 0 && len(o.Match) == 0 || reflect.DeepEqual(r.Match, o.Match)) &&
		(r.Sticky == nil) == (o.Sticky == nil) && (r.Sticky == nil || *r.Sticky == *o.Sticky)
}

// Sticky is the cookie that the canary's answers set and that sends the
// requests that carry it to the canary.
type Sticky struct {
	Cookie, Value string
	MaxAge        time.Duration
}

// SetCookie is the Set-Cookie header of the canary's answers.
func (s Sticky) SetCookie() string {
	return fmt.Sprintf("%s=%s; Max-Age=%d; Path=/", s.Cookie, s.Value, int64(s.MaxAge/time.Second))
}

// Match is the condition of the requests that carry the cookie.
func (s Sticky) Match() canary.HeaderMatch { return canary.CookieMatch(s.Cookie, s.Value) }

// ParseSetCookie reads a Sticky back from its Set-Cookie header.
func ParseSetCookie(header string) (Sticky, bool) {
	c, err := http.ParseSetCookie(header)
	if err != nil {
		return Sticky{}, false
	}
	return Sticky{Cookie: c.Name, Value: c.Value, MaxAge: time.Duration(c.MaxAge) * time.Second}, true
}

// ReadSticky is the Sticky a route holds, from whether it has sluice's
// sticky rule and the cookie its canary sets (nil for none): half of the
// pair is a Sticky equal to none that sluice wants, so that it is written
// again.
func ReadSticky(rule bool, cookie *Sticky) *Sticky {
	switch {
	case rule && cookie != nil:
		return cookie
	case rule || cookie != nil:
		return &Sticky{}
	}
	return nil
}

// Rule names of the rules that sluice adds to its own routes before the
// weighted one.
const (
	MatchRule  = "sluice-match"
	StickyRule = "sluice-sticky"
)

// Target is one opted-in Deployment as a router sees it.
type Target struct {
	Deployment *appsv1.Deployment
	Settings   canary.Settings
	// Port is the port of the Deployment's Services.
	Port int32
}

// Primary is the name of the Service of the target's primary.
func (t Target) Primary() string { return PrimaryName(t.Deployment.Name) }

// Canary is the name of the Service of the target's canary.
func (t Target) Canary() string { return CanaryName(t.Deployment.Name) }

// Adopted reports whether the target's route is one the user wrote.
func (t Target) Adopted() bool { return t.Settings.VirtualService != "" || t.Settings.HTTPRoute != "" }

// Router turns a Routing into the objects of one routing API.
type Router interface {
	// Name is the value of sluice.dev/router that picks this router.
	Name() string
	// Kind is the kind of its route objects, for messages.
	Kind() string
	// AddToScheme adds the types of its route objects.
	AddToScheme(*runtime.Scheme) error
	// New returns an empty route object, to read into or to watch.
	New() client.Object
	// Adopted is the name of the user's route that s adopts, and the
	// annotation that names it; "" when sluice makes its own, named after
	// the Deployment.
	Adopted(s canary.Settings) (name, annotation string)
	// Unsupported says, one message each, which of s this router cannot
	// do; nil when it can do all.
	Unsupported(s canary.Settings) []string
	// Build returns the route sluice makes for t, sending r.
	Build(t Target, r Routing) client.Object
	// Check says why an adopted route cannot serve t; "" when it can.
	Check(t Target, route client.Object) string
	// Routed reads what route sends now.
	Routed(t Target, route client.Object) Routing
	// Patch returns the patch that makes route send r and changes nothing
	// else of it; nil when route sends r already.
	Patch(t Target, route client.Object, r Routing) (client.Patch, error)
}

// Labels on every object sluice creates.
const (
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "sluice"
)

// CanaryName is the name of the canary Deployment of Deployment name, and
// of the Service of its pods.
func CanaryName(name string) string { return name + "-canary" }

// PrimaryName is the name of the Service of the pods of Deployment name's
// own template.
func PrimaryName(name string) string { return name + "-primary" }

// OwnedBy is the metadata of an object that sluice makes for dep: deleting
// dep deletes it.
func OwnedBy(dep *appsv1.Deployment, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: dep.Namespace,
		Labels:    map[string]string{ManagedByLabel: ManagedBy},
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(dep,
			appsv1.SchemeGroupVersion.WithKind("Deployment"))},
	}
}

// IsServiceHost reports whether host names Service svc of namespace ns, by
// its short or its qualified names.
func IsServiceHost(host, svc, ns string) bool {
	switch host {
	case svc, svc + "." + ns, svc + "." + ns + ".svc", svc + "." + ns + ".svc.cluster.local":
		return true
	}
	return false
}

// Backend is a place in a route that sends to the primary or the canary
// Service, for a weight patch.
type Backend struct {
	// Path is its JSON pointer in the route; the patch tests that the field
	// at Path+NameField still holds Name.
	Path, NameField, Name string
	Canary                bool
	Weight                int32
}

// WeightPatch is a JSON patch that sets the canary's backends to weight and
// the primary's to the rest, and touches nothing else; nil when they are
// right already.
func WeightPatch(backends []Backend, weight int32) []map[string]any {
	var ops []map[string]any
	for _, b := range backends {
		want := 100 - weight
		if b.Canary {
			want = weight
		}
		if b.Weight == want {
			continue
		}
		// The test guards against routes that changed since they were
		// read; "add" also sets a weight of 0, which the APIs leave out.
		ops = append(ops,
			map[string]any{"op": "test", "path": b.Path + b.NameField, "value": b.Name},
			map[string]any{"op": "add", "path": b.Path + "/weight", "value": want})
	}
	return ops
}
