// Package mesh simulates Istio's data plane for sluice's demo and tests.
// It is a simulator, not Istio: no Envoy runs and no pod serves anything.
// Each request is routed by the live rules of the Istio VirtualService or
// the Gateway API HTTPRoutes that serve its host (header and cookie
// matches, weights, mirrors, response headers), answered as the
// destination's Deployment says in its pod template (env MESSAGE,
// ERROR_RATE, LATENCY_MS, CHECKOUT_RATE), and counted in Istio's standard
// telemetry and the shop's checkout counter, which a real Prometheus
// scrapes.
//
// A host that both a VirtualService and an HTTPRoute serve is routed by the
// VirtualService alone: Istio's own API is the one a mesh that runs both
// follows, and a simulator that merged them would hide a conflict.
package mesh

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	istiov1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/discovery"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"sluice.dev/sluice/test/meshsim/telemetry"
)

// The environment variables of a pod template that say how its simulated
// workload answers.
const (
	EnvMessage   = "MESSAGE"
	EnvErrorRate = "ERROR_RATE"
	EnvLatencyMS = "LATENCY_MS"
	// EnvCheckoutRate is the share of successful requests that complete a
	// checkout: the business metric of the demo's custom check.
	EnvCheckoutRate = "CHECKOUT_RATE"
)

// Mesh routes simulated requests.
type Mesh struct {
	reader client.Reader
	tel    *telemetry.Telemetry
	tables tables
}

// New returns a Mesh that reads the cluster through reader, normally a
// cache from NewCache, and records into tel.
func New(reader client.Reader, tel *telemetry.Telemetry) *Mesh {
	return &Mesh{reader: reader, tel: tel}
}

// NewCache starts a cache of what a Mesh reads (VirtualServices, Services,
// Deployments, and HTTPRoutes if the API server serves them when it starts)
// and waits until it has synced. It runs until ctx ends.
func NewCache(ctx context.Context, cfg *rest.Config) (cache.Cache, error) {
	routes, err := serves(cfg, gatewayv1.GroupVersion.String(), "httproutes")
	if err != nil {
		return nil, fmt.Errorf("mesh cache: %w", err)
	}
	return newCache(ctx, cfg, routes)
}

func newCache(ctx context.Context, cfg *rest.Config, httpRoutes bool) (cache.Cache, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, istiov1.AddToScheme, gatewayv1.Install} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("mesh cache: %w", err)
		}
	}
	watch := []client.Object{&istiov1.VirtualService{}, &corev1.Service{}, &appsv1.Deployment{}}
	if httpRoutes {
		watch = append(watch, &gatewayv1.HTTPRoute{})
	}
	// Failing on a kind it does not watch, rather than starting to watch
	// it, is how the Mesh learns that there are no HTTPRoutes to read.
	c, err := cache.New(cfg, cache.Options{Scheme: scheme, ReaderFailOnMissingInformer: true})
	if err != nil {
		return nil, fmt.Errorf("mesh cache: %w", err)
	}
	for _, obj := range watch {
		if _, err := c.GetInformer(ctx, obj); err != nil {
			return nil, fmt.Errorf("mesh cache: watch %T: %w", obj, err)
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("mesh cache: not synced: %w", ctx.Err())
	}
	return c, nil
}

// serves: the API server serves resource in groupVersion.
func serves(cfg *rest.Config, groupVersion, resource string) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, fmt.Errorf("discovery: %w", err)
	}
	resources, err := dc.ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", groupVersion, err)
	}
	for _, r := range resources.APIResources {
		if r.Name == resource {
			return true, nil
		}
	}
	return false, nil
}

// virtualServices lists the VirtualServices, read-only: every request
// reads the cache, which need not copy.
func (m *Mesh) virtualServices(ctx context.Context) ([]*istiov1.VirtualService, error) {
	list := &istiov1.VirtualServiceList{}
	if err := m.reader.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("list VirtualServices: %w", err)
	}
	return list.Items, nil
}

// httpRoutes lists the HTTPRoutes, read-only; none when the reader has
// none to give because the API server does not serve them.
func (m *Mesh) httpRoutes(ctx context.Context) ([]gatewayv1.HTTPRoute, error) {
	list := &gatewayv1.HTTPRouteList{}
	err := m.reader.List(ctx, list, client.UnsafeDisableDeepCopy)
	var notCached *cache.ErrResourceNotCached
	if errors.As(err, &notCached) || meta.IsNoMatchError(err) || runtime.IsNotRegisteredError(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list HTTPRoutes: %w", err)
	}
	return list.Items, nil
}

// HeaderWorkload names the Deployment that answered a request, as
// NAMESPACE/NAME, in the answers of ServeHTTP: how a client tells the
// versions apart whatever their MESSAGE.
const HeaderWorkload = "X-Meshsim-Workload"

// Answer is the simulated response to one request.
type Answer struct {
	Code int
	Body string
	// Header is what the route adds to the answers of the destination that
	// answered, such as a sticky Set-Cookie.
	Header http.Header
	// Latency is how long the workload takes to answer.
	Latency time.Duration
	// Namespace and Workload name the Deployment that answered; empty when
	// no workload could.
	Namespace, Workload string
	// Checkout: the request completed a checkout.
	Checkout bool
}

// Route sends one request through the mesh: the route that serves its host
// picks the first of its rules that matches it, and the rule one of its
// destinations by their weights, which answers as its workload would. A rule's mirrors get a copy of their share of the requests, which
// their workloads answer to no one. Answers of a workload, mirrored or
// not, are recorded in Istio's telemetry, as its sidecar would report them.
func (m *Mesh) Route(ctx context.Context, req Request) (Answer, error) {
	rules, found, err := m.rulesFor(ctx, req.Host)
	if err != nil {
		return Answer{}, err
	}
	if !found {
		return Answer{Code: http.StatusNotFound, Body: "no VirtualService or HTTPRoute serves " + req.Host}, nil
	}
	return m.follow(ctx, rules, req)
}

// follow routes req by rules.
func (m *Mesh) follow(ctx context.Context, rules []rule, req Request) (Answer, error) {
	r := firstMatch(rules, req)
	if r == nil {
		return Answer{Code: http.StatusNotFound, Body: "no route matches"}, nil
	}
	m.mirror(ctx, r.mirrors)
	d := r.pick()
	if d == nil {
		return Answer{Code: http.StatusServiceUnavailable, Body: "no route"}, nil
	}
	a, err := m.deliver(ctx, d.service)
	if a.Workload != "" && d.header != nil {
		a.Header = d.header.Clone()
	}
	return a, err
}

// mirror sends each mirror its share of copies; their answers, and any
// failure to answer, are no one's concern but the telemetry's.
func (m *Mesh) mirror(ctx context.Context, mirrors []mirror) {
	for _, mr := range mirrors {
		if rand.Float64()*100 < mr.percent {
			_, _ = m.deliver(ctx, mr.service)
		}
	}
}

// deliver has the workload behind s answer one request, and records it.
func (m *Mesh) deliver(ctx context.Context, s service) (Answer, error) {
	if s.name == "" {
		return Answer{Code: http.StatusInternalServerError, Body: "backend is not a Service"}, nil
	}
	svc := &corev1.Service{}
	unavailable := Answer{Code: http.StatusServiceUnavailable, Body: "no healthy upstream"}
	if err := m.reader.Get(ctx, client.ObjectKey{Namespace: s.namespace, Name: s.name}, svc); err != nil {
		if apierrors.IsNotFound(err) {
			return unavailable, nil
		}
		return unavailable, fmt.Errorf("service %s/%s: %w", s.namespace, s.name, err)
	}
	dep, err := m.workload(ctx, svc)
	if err != nil {
		return unavailable, fmt.Errorf("workload of service %s/%s: %w", s.namespace, s.name, err)
	}
	if dep == nil || dep.Status.ReadyReplicas == 0 {
		return unavailable, nil
	}
	a := answer(dep)
	m.tel.Record(telemetry.Request{Namespace: s.namespace, Workload: dep.Name, Service: svc.Name, Code: a.Code, Duration: a.Latency, Checkout: a.Checkout})
	return a, nil
}

// workload is the Deployment whose pods svc selects.
func (m *Mesh) workload(ctx context.Context, svc *corev1.Service) (*appsv1.Deployment, error) {
	if len(svc.Spec.Selector) == 0 {
		return nil, nil
	}
	list := &appsv1.DeploymentList{}
	if err := m.reader.List(ctx, list, client.InNamespace(svc.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	selector := labels.SelectorFromSet(svc.Spec.Selector)
	for i := range list.Items {
		if selector.Matches(labels.Set(list.Items[i].Spec.Template.Labels)) {
			return &list.Items[i], nil
		}
	}
	return nil, nil
}

// answer is how the running version of dep answers one request.
func answer(dep *appsv1.Deployment) Answer {
	a := Answer{Code: http.StatusOK, Body: "hello", Namespace: dep.Namespace, Workload: dep.Name}
	if cs := dep.Spec.Template.Spec.Containers; len(cs) > 0 {
		var errorRate, checkoutRate float64
		for _, e := range cs[0].Env {
			switch e.Name {
			case EnvMessage:
				a.Body = e.Value
			case EnvErrorRate:
				errorRate, _ = strconv.ParseFloat(e.Value, 64)
			case EnvLatencyMS:
				ms, _ := strconv.Atoi(e.Value)
				a.Latency = time.Duration(ms) * time.Millisecond
			case EnvCheckoutRate:
				checkoutRate, _ = strconv.ParseFloat(e.Value, 64)
			}
		}
		if rand.Float64() < errorRate {
			a.Code, a.Body = http.StatusInternalServerError, "simulated failure"
		} else {
			a.Checkout = rand.Float64() < checkoutRate
		}
	}
	return a
}

// ServeHTTP answers a request for the host in its Host header, after the
// workload's latency, with the route's response headers for the
// destination and HeaderWorkload.
func (m *Mesh) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a, err := m.Route(r.Context(), Request{Host: host, Path: r.URL.Path, Header: r.Header})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	select {
	case <-time.After(a.Latency):
	case <-r.Context().Done():
		return
	}
	for name, values := range a.Header {
		for _, v := range values {
			w.Header().Add(name, v)
		}
	}
	if a.Workload != "" {
		w.Header().Set(HeaderWorkload, a.Namespace+"/"+a.Workload)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(a.Code)
	fmt.Fprintln(w, a.Body)
}
